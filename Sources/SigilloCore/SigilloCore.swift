// SigilloCore
