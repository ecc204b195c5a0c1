// SigilloServer
