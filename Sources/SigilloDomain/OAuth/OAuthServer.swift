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

    func refuse(_ client: OAuthClient, _ error: OAuthError) async throws -> OAuthError {
        try await self.audit.record("anonymous", "oauth2.token", target: client.id, outcome: "refused", details: error.message)
        return error
    }

    func insert(_ kind: OAuthGrantKind, id: String, payload: OAuthGrantPayload, lifetime: TimeInterval) async throws {
        let now = self.clock.now()
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        try await self.store.insertOAuthGrant(OAuthGrant(
            idHash: Secrets.digest(id), kind: kind, clientID: payload.request.clientID, payload: try encoder.encode(payload), expiresAt: now.addingTimeInterval(lifetime)), now: now)
    }

    static func decode(_ grant: OAuthGrant) throws -> OAuthGrantPayload {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        do {
            return try decoder.decode(OAuthGrantPayload.self, from: grant.payload)
        } catch {
            throw SigilloError(.internalError, "an authorization record cannot be read")
        }
    }
}
