import Crypto
import Foundation

/// The OAuth2 authorization server of CSC v2 (RFC 6749 authorization code with PKCE S256, RFC 9126 pushed requests,
/// RFC 9396 authorization details, RFC 7009 revocation), for wallets that sign with credential-scoped tokens.
///
/// A `credential` token is the SAD: the holder's page checks username, password and OTP (each under its lock, with the
/// enumeration rules of every anonymous route), and the token is stored as a SAD bound to the holder, the client, the
/// credential, the exact digests and `numSignatures`, living `sadLifetime` from the holder's approval. A `service` token
/// is an account token, like `auth/login`'s, and never signs.
public struct OAuthServer: Sendable {
    let store: any OAuthStore & SADStore & AccessTokenStore & OTPStore & HolderStore
    let authentication: Authentication
    let credentials: CredentialAccess
    let otp: OTPVerifier
    let sms: SMSSender
    let audit: AuditLog
    let clock: ServiceClock
    let settings: DomainSettings

    /// Lifetimes: a pushed request and a code 60 s, a page left open 10 minutes, a service token 30 minutes.
    public static let pushedRequestLifetime: TimeInterval = 60
    public static let codeLifetime: TimeInterval = 60
    public static let pageLifetime: TimeInterval = 600
    public static let serviceTokenLifetime: TimeInterval = 1800
    /// The prefix of every `request_uri` (RFC 9126 §2.2).
    public static let requestURIPrefix = "urn:ietf:params:oauth:request_uri:"

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

    // MARK: Authorization requests

    /// Stores a pushed authorization request (RFC 9126) of an authenticated client.
    ///
    /// - Returns: the `request_uri` (single use) and its lifetime in seconds.
    public func push(_ request: AuthorizationRequest, client: OAuthClient) async throws -> (requestURI: String, expiresIn: Int) {
        guard request.clientID == client.id else { throw OAuthError.invalidRequest("client_id is not the authenticated client") }
        let uri = Self.requestURIPrefix + Secrets.token()
        try await self.insert(.pushedRequest, id: uri, payload: OAuthGrantPayload(request: request), lifetime: Self.pushedRequestLifetime)
        return (uri, Int(Self.pushedRequestLifetime))
    }

    /// The pushed request `requestURI` names, spent (it is single use).
    ///
    /// - Throws: `OAuthError` `invalid_request_uri` when unknown, expired, already used or another client's.
    public func takePushedRequest(_ requestURI: String, clientID: String) async throws -> AuthorizationRequest {
        let refused = OAuthError("invalid_request_uri", "the request_uri is unknown, expired or already used")
        let hash = Secrets.digest(requestURI)
        guard let grant = try await self.store.oauthGrant(idHash: hash), grant.kind == .pushedRequest, grant.clientID == clientID,
              try await self.store.takeOAuthGrant(idHash: hash, kind: .pushedRequest, now: self.clock.now(), tokenHash: nil) else {
            throw refused
        }
        return try Self.decode(grant).request
    }

    /// Opens the holder's page for a validated request: the returned identifier travels in the page's form.
    public func beginAuthorization(_ request: AuthorizationRequest) async throws -> String {
        let id = Secrets.token()
        try await self.insert(.pending, id: id, payload: OAuthGrantPayload(request: request), lifetime: Self.pageLifetime)
        try await self.audit.record("anonymous", "oauth2.authorize", target: request.clientID, outcome: "opened", details: "scope=\(request.scope.rawValue)")
        return id
    }

    /// The request a page shows, and its client.
    ///
    /// - Throws: `linkExpired` when the page's authorization was approved, denied or expired.
    public func pendingAuthorization(_ id: String) async throws -> (request: AuthorizationRequest, client: OAuthClient) {
        guard let grant = try await self.store.oauthGrant(idHash: Secrets.digest(id)), grant.kind == .pending, !grant.used, grant.expiresAt > self.clock.now(),
              let client = try await self.store.oauthClient(id: grant.clientID) else {
            throw SigilloError(.linkExpired, "this authorization request is over (approved, refused or expired): start again from the application")
        }
        return (try Self.decode(grant).request, client)
    }

    /// Sends the SMS code for this signature authorization once username and password are right (holders whose device is SMS).
    public func sendCode(pending id: String, username: String, password: String) async throws {
        _ = try await self.pendingAuthorization(id)
        let holder = try await self.authentication.checkPassword(username: username, password: password, action: "oauth2.authorize")
        guard let device = try await self.store.activeOTPDevice(holderID: holder.id), device.kind == .sms else {
            throw SigilloError(.invalidRequest, "this account's OTP is not sent by SMS: type the code of your device")
        }
        try await self.sms.sendCode(to: holder, for: .signature)
    }

    /// The holder approves on the page with username, password and OTP (each under its lock; an unknown user, a wrong
    /// password and a locked one answer alike). For `credential`, the credential must be the holder's, usable, and allow
    /// `numSignatures`. The page's authorization is spent and a code (single use, 60 s) issued.
    ///
    /// - Returns: where the browser goes: the redirect URI with `code`, `state` and `iss` (RFC 9207).
    public func approve(pending id: String, username: String, password: String, otp: String) async throws -> AuthorizationRedirect {
        let (request, client) = try await self.pendingAuthorization(id)
        let holder = try await self.authentication.checkPassword(username: username, password: password, action: "oauth2.authorize")
        let target = request.credential?.credentialID ?? holder.id
        do {
            guard holder.state != .revoked else { throw SigilloError(.credentialDisabled, "the account is \(holder.state.label)") }
            if let scope = request.credential {
                let credential = try await self.credentials.usable(scope.credentialID, holderID: holder.id)
                guard scope.numSignatures <= credential.multisign else {
                    throw SigilloError(.tooManySignatures, "Numbers of signatures is too high (at most \(credential.multisign))")
                }
            }
        } catch let error as SigilloError {
            try await self.audit.record(holder.id, "oauth2.authorize", target: target, outcome: "refused", details: error.code.rawValue)
            throw error
        }
        try await self.otp.verify(otp, holder: holder, purpose: .signature, action: "oauth2.authorize", target: target)
        let now = self.clock.now()
        guard try await self.store.takeOAuthGrant(idHash: Secrets.digest(id), kind: .pending, now: now, tokenHash: nil) else {
            throw SigilloError(.linkExpired, "this authorization request is over (approved, refused or expired): start again from the application")
        }
        let code = Secrets.token()
        try await self.insert(.code, id: code, payload: OAuthGrantPayload(request: request, holderID: holder.id, authorizedAt: now), lifetime: Self.codeLifetime)
        let details = request.credential.map { "client=\(client.id) scope=credential signatures=\($0.numSignatures) hashes=\($0.hashes.count)" } ?? "client=\(client.id) scope=service"
        try await self.audit.record(holder.id, "oauth2.authorize", target: target, outcome: "ok", details: details)
        return self.redirect(request, ["code": code])
    }

    /// The holder refuses on the page: the authorization is spent and the client told `access_denied`.
    public func deny(pending id: String) async throws -> AuthorizationRedirect {
        let (request, client) = try await self.pendingAuthorization(id)
        guard try await self.store.takeOAuthGrant(idHash: Secrets.digest(id), kind: .pending, now: self.clock.now(), tokenHash: nil) else {
            throw SigilloError(.linkExpired, "this authorization request is over (approved, refused or expired): start again from the application")
        }
        try await self.audit.record("anonymous", "oauth2.authorize", target: client.id, outcome: "denied")
        return self.redirect(request, ["error": "access_denied", "error_description": "the holder refused"])
    }

    /// The redirect of `request` with `parameters`, its `state` and the issuer.
    public func redirect(_ request: AuthorizationRequest, _ parameters: [String: String]) -> AuthorizationRedirect {
        var query = parameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        if let state = request.state { query.append(("state", state)) }
        query.append(("iss", self.issuer))
        return AuthorizationRedirect(redirectURI: request.redirectURI, parameters: query)
    }

    /// The authorization server's issuer identifier (RFC 8414): the public base URL.
    public var issuer: String {
        self.settings.publicBaseURL.hasSuffix("/") ? String(self.settings.publicBaseURL.dropLast()) : self.settings.publicBaseURL
    }

    // MARK: Tokens

    /// Exchanges a code (`grant_type=authorization_code`) of an authenticated client: same client, same redirect URI,
    /// and the PKCE verifier whose S256 is the request's challenge. A code is spent once; a replayed code also deletes
    /// or revokes the token it gave (RFC 6749 §4.1.2).
    ///
    /// - Throws: `OAuthError` `invalid_grant` (or `invalid_request` for a missing parameter).
    public func exchange(code: String, redirectURI: String?, codeVerifier: String?, client: OAuthClient) async throws -> OAuthToken {
        let now = self.clock.now()
        let hash = Secrets.digest(code)
        guard let grant = try await self.store.oauthGrant(idHash: hash), grant.kind == .code, grant.clientID == client.id else {
            throw try await self.refuse(client, OAuthError.invalidGrant("the authorization code is not valid"))
        }
        if grant.used {
            if let tokenHash = grant.tokenHash {
                try await self.store.deleteSAD(idHash: tokenHash)
                try await self.store.revokeAccessToken(tokenHash: tokenHash)
            }
            throw try await self.refuse(client, OAuthError.invalidGrant("the authorization code was already used: the token it gave is revoked"))
        }
        guard grant.expiresAt > now else { throw try await self.refuse(client, OAuthError.invalidGrant("the authorization code has expired")) }
        let payload = try Self.decode(grant)
        let request = payload.request
        guard let redirectURI else { throw OAuthError.invalidRequest("redirect_uri is missing") }
        guard redirectURI == request.redirectURI else { throw try await self.refuse(client, OAuthError.invalidGrant("redirect_uri differs from the authorization request's")) }
        guard let codeVerifier else { throw OAuthError.invalidRequest("code_verifier is missing (PKCE is required)") }
        guard Self.isCodeVerifier(codeVerifier), ConstantTime.equals(Self.s256(codeVerifier), request.codeChallenge) else {
            throw try await self.refuse(client, OAuthError.invalidGrant("the code_verifier does not match the code_challenge"))
        }
        guard let holderID = payload.holderID, let authorizedAt = payload.authorizedAt else { throw OAuthError.invalidGrant("the authorization code is not valid") }
        let token = Secrets.token()
        guard try await self.store.takeOAuthGrant(idHash: hash, kind: .code, now: now, tokenHash: Secrets.digest(token)) else {
            throw try await self.refuse(client, OAuthError.invalidGrant("the authorization code was already used"))
        }
        let expiresIn: Int
        if let scope = request.credential {
            // Suspended, revoked or expired since the approval: no token.
            do {
                _ = try await self.credentials.usable(scope.credentialID, holderID: holderID)
            } catch let error as SigilloError {
                throw try await self.refuse(client, OAuthError.invalidGrant("the credential cannot sign now: \(error.message)"))
            }
            let expiresAt = authorizedAt.addingTimeInterval(min(self.settings.sadLifetime, self.settings.sadMaxLifetime))
            guard expiresAt > now else { throw OAuthError.invalidGrant("the holder's authorization has expired") }
            try await self.store.insertSAD(SADRecord(
                idHash: Secrets.digest(token), holderID: holderID, credentialID: scope.credentialID, hashAlgorithm: scope.hashAlgorithm, hashes: scope.hashes,
                numSignatures: scope.numSignatures, used: 0, expiresAt: expiresAt, authorizedAt: authorizedAt, clientID: client.id))
            expiresIn = Int(expiresAt.timeIntervalSince(now).rounded())
        } else {
            try await self.store.createAccessToken(tokenHash: Secrets.digest(token), holderID: holderID, expiresAt: now.addingTimeInterval(Self.serviceTokenLifetime),
                                                   clientID: client.id)
            expiresIn = Int(Self.serviceTokenLifetime)
        }
        try await self.audit.record(holderID, "oauth2.token", target: request.credential?.credentialID ?? holderID, outcome: "ok",
                                    details: "client=\(client.id) scope=\(request.scope.rawValue)")
        return OAuthToken(accessToken: token, expiresIn: expiresIn, request: request)
    }

    /// Revokes a token the client was issued (RFC 7009): a credential token is deleted, a service token revoked. A token
    /// that is unknown, or another client's, changes nothing and gets the same answer.
    public func revoke(token: String, client: OAuthClient) async throws {
        let hash = Secrets.digest(token)
        if let sad = try await self.store.sad(idHash: hash), sad.clientID == client.id {
            try await self.store.deleteSAD(idHash: hash)
            try await self.audit.record(sad.holderID, "oauth2.revoke", target: sad.credentialID, outcome: "ok", details: "client=\(client.id) scope=credential")
        } else if try await self.store.accessTokenClient(tokenHash: hash) == client.id, let holderID = try await self.store.accessToken(tokenHash: hash)?.holderID {
            try await self.store.revokeAccessToken(tokenHash: hash)
            try await self.audit.record(holderID, "oauth2.revoke", target: holderID, outcome: "ok", details: "client=\(client.id) scope=service")
        } else {
            try await self.audit.record("anonymous", "oauth2.revoke", target: client.id, outcome: "ignored")
        }
    }

    // MARK: Helpers

    /// base64url(SHA-256(verifier)), unpadded (RFC 7636 §4.2).
    static func s256(_ verifier: String) -> String {
        Data(SHA256.hash(data: Data(verifier.utf8))).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// 43 to 128 unreserved characters (RFC 7636 §4.1).
    static func isCodeVerifier(_ text: String) -> Bool {
        (43...128).contains(text.utf8.count) && text.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x7E
        }
    }

    private func refuse(_ client: OAuthClient, _ error: OAuthError) async throws -> OAuthError {
        try await self.audit.record("anonymous", "oauth2.token", target: client.id, outcome: "refused", details: error.message)
        return error
    }

    private func insert(_ kind: OAuthGrantKind, id: String, payload: OAuthGrantPayload, lifetime: TimeInterval) async throws {
        let now = self.clock.now()
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        try await self.store.insertOAuthGrant(OAuthGrant(
            idHash: Secrets.digest(id), kind: kind, clientID: payload.request.clientID, payload: try encoder.encode(payload), expiresAt: now.addingTimeInterval(lifetime)), now: now)
    }

    private static func decode(_ grant: OAuthGrant) throws -> OAuthGrantPayload {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        do {
            return try decoder.decode(OAuthGrantPayload.self, from: grant.payload)
        } catch {
            throw SigilloError(.internalError, "an authorization record cannot be read")
        }
    }
}
