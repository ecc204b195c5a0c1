extension AdminAPI {
    /// `POST /admin/v1/clients`: an OAuth2 client of the authorization server.
    public struct RegisterClient: Codable, Sendable {
        public var name: String
        public var redirectURIs: [String]
        /// An EC P-256 public key (PEM): the client authenticates with `private_key_jwt` (ES256) and gets no secret.
        public var publicKeyPEM: String?

        public init(name: String, redirectURIs: [String], publicKeyPEM: String? = nil) {
            self.name = name
            self.redirectURIs = redirectURIs
            self.publicKeyPEM = publicKeyPEM
        }
    }

    /// A registered OAuth2 client (never its secret).
    public struct ClientView: Codable, Sendable, Equatable {
        public var clientID: String
        public var name: String
        public var redirectURIs: [String]
        public var createdAt: String
        /// `client_secret` (basic or post) or `private_key_jwt`.
        public var authentication: String

        public init(clientID: String, name: String, redirectURIs: [String], createdAt: String, authentication: String) {
            self.authentication = authentication
            self.clientID = clientID
            self.name = name
            self.redirectURIs = redirectURIs
            self.createdAt = createdAt
        }
    }

    /// The answer to a registration: the client, and its secret (none for `private_key_jwt`), shown this once.
    public struct RegisteredClient: Codable, Sendable {
        public var client: ClientView
        public var clientSecret: String?

        public init(client: ClientView, clientSecret: String?) {
            self.client = client
            self.clientSecret = clientSecret
        }
    }

    public struct ClientList: Codable, Sendable {
        public var clients: [ClientView]

        public init(clients: [ClientView]) {
            self.clients = clients
        }
    }
}
