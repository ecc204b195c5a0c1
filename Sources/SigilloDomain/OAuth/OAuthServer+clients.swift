import Crypto
import Foundation

/// The client registry (`sigillo admin clients`) and client authentication (secret or `private_key_jwt`).
extension OAuthServer {
    // MARK: Clients

    /// Registers a client: with a secret (returned once and kept as a digest), or with the EC P-256 public key (PEM) its
    /// `private_key_jwt` assertions are signed with (then no secret).
    ///
    /// - Throws: `invalidRequest` for a missing name, a key that is not EC P-256, or a redirect URI that is not absolute, has
    ///   a fragment, or is plain `http` to anything but the loopback address.
    public func registerClient(name: String, redirectURIs: [String], publicKeyPEM: String? = nil, actor: String) async throws -> (client: OAuthClient, secret: String?) {
        let name = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, name.count <= 100, !name.contains(where: \.isNewline) else {
            throw SigilloError(.invalidRequest, "the client name is 1 to 100 characters on one line")
        }
        guard !redirectURIs.isEmpty, redirectURIs.count <= 10 else { throw SigilloError(.invalidRequest, "give 1 to 10 redirect URIs") }
        for uri in redirectURIs {
            if let problem = Self.redirectURIProblem(uri) { throw SigilloError(.invalidRequest, "redirect URI \(uri): \(problem)") }
        }
        var key: String?
        if let publicKeyPEM {
            guard let parsed = try? P256.Signing.PublicKey(pemRepresentation: publicKeyPEM) else {
                throw SigilloError(.invalidRequest, "the client's public key must be an EC P-256 key in PEM (its assertions are signed ES256)")
            }
            key = parsed.pemRepresentation
        }
        let secret = key == nil ? Secrets.token() : nil
        let client = OAuthClient(id: "client-" + Secrets.token(bytes: 12), name: name, secretHash: secret.map(Secrets.digest), publicKeyPEM: key,
                                 redirectURIs: Array(NSOrderedSet(array: redirectURIs)) as? [String] ?? redirectURIs,
                                 createdAt: Date(timeIntervalSince1970: self.clock.now().timeIntervalSince1970.rounded(.down)))
        try await self.store.insertOAuthClient(client)
        try await self.audit.record(actor, "oauth2.client.add", target: client.id, outcome: "ok",
                                    details: "name=\(name) redirect_uris=\(client.redirectURIs.count) auth=\(key == nil ? "client_secret" : "private_key_jwt")")
        return (client, secret)
    }

    /// Why `uri` cannot be a redirect URI, or nil.
    static func redirectURIProblem(_ uri: String) -> String? {
        guard uri.count <= 512, let components = URLComponents(string: uri), let scheme = components.scheme?.lowercased(), !scheme.isEmpty else {
            return "not an absolute URI"
        }
        guard components.fragment == nil else { return "a fragment is not allowed (RFC 6749 §3.1.2)" }
        switch scheme {
        case "https":
            return components.host?.isEmpty == false ? nil : "no host"
        case "http":
            // Native apps' loopback redirect (RFC 8252 §7.3); anything else would carry codes in clear.
            return ["127.0.0.1", "[::1]", "::1", "localhost"].contains(components.host ?? "") ? nil : "plain http only to the loopback address"
        case "javascript", "data", "file", "vbscript", "about", "blob":
            return "scheme \(scheme) is not allowed"
        default:
            // A private-use scheme of a native wallet (RFC 8252 §7.1), e.g. eu.europa.ec.eudi.rqes:/callback.
            return nil
        }
    }

    /// Every registered client (an operator's read, audited).
    public func clients(actor: String) async throws -> [OAuthClient] {
        let clients = try await self.store.oauthClients()
        try await self.audit.record(actor, "oauth2.client.list", target: "clients", outcome: "ok", details: "count=\(clients.count)")
        return clients
    }

    /// Removes a client: its account tokens are revoked, its credential tokens and pending authorizations deleted.
    public func removeClient(id: String, actor: String) async throws {
        guard try await self.store.deleteOAuthClient(id: id) else { throw SigilloError(.notFound, "unknown client \(id)") }
        try await self.audit.record(actor, "oauth2.client.remove", target: id, outcome: "ok")
    }

    /// A registered client (the authorization endpoint names it without a secret).
    public func client(id: String) async throws -> OAuthClient? {
        try await self.store.oauthClient(id: id)
    }

    /// Authenticates a client by its secret (`client_secret_basic` or `client_secret_post`). Digests are compared in
    /// constant time, and an unknown client (or one without a secret) costs the same.
    ///
    /// - Throws: `OAuthError` `invalid_client` (401).
    public func authenticateClient(id: String, secret: String) async throws -> OAuthClient {
        let client = try await self.store.oauthClient(id: id)
        let presented = Secrets.digest(secret)
        let matches = ConstantTime.equals(presented, client?.secretHash ?? Secrets.digest("decoy:" + secret))
        guard let client, client.secretHash != nil, matches else {
            try await self.audit.record("anonymous", "oauth2.client.authenticate", target: "client", outcome: "refused", details: "unknown client or wrong secret")
            throw OAuthError.invalidClient()
        }
        return client
    }

    /// Authenticates a client by a `private_key_jwt` assertion (ES256 with its registered key) made for one of
    /// `audiences`; each assertion (`jti`) is accepted once.
    ///
    /// - Throws: `OAuthError` `invalid_client` (401).
    public func authenticateClient(assertion: String, audiences: [String]) async throws -> OAuthClient {
        do {
            let parsed = try ClientAssertion(assertion)
            guard let issuer = parsed.issuer, let client = try await self.store.oauthClient(id: issuer) else {
                throw OAuthError.invalidClient("the client_assertion's issuer is not a registered client")
            }
            let now = self.clock.now()
            let (jti, expiresAt) = try parsed.verify(client: client, audiences: audiences, now: now)
            do {
                try await self.store.insertOAuthGrant(OAuthGrant(idHash: Secrets.digest("\(client.id) \(jti)"), kind: .assertion, clientID: client.id, payload: Data(),
                                                                 expiresAt: expiresAt, used: true), now: now)
            } catch let error as SigilloError where error.code == .conflict {
                throw OAuthError.invalidClient("this client_assertion (jti) was already used")
            }
            return client
        } catch let error as OAuthError {
            try await self.audit.record("anonymous", "oauth2.client.authenticate", target: "client", outcome: "refused", details: error.message)
            throw error
        }
    }
}
