import Foundation

/// Who is asking: username and password (CSC `auth/login` and every self-service route), bearer tokens, and the
/// holder's user (emergency) code. Wrong passwords count towards the lock of every credential of the holder.
public struct Authentication: Sendable {
    let store: any HolderStore & CredentialStore & AccessTokenStore & SADStore
    let attempts: SecretAttempts
    let passwords: PasswordHasher
    let blocking: BlockingExecutor
    let audit: AuditLog
    let clock: ServiceClock
    /// Tokens this node checked, for `cachedHolderID` (shared with `Signing`, which re-checks them in the database).
    let cache: HotPathCache

    /// Checks username and password (CSC `auth/login`). Failures count towards the lockout of every credential.
    public func login(username: String, password: String) async throws -> Holder {
        let holder = try await self.checkPassword(username: username, password: password, action: "login")
        // Suspended and expired holders may still log in and see their credentials; signing checks each credential.
        guard holder.state != .revoked else {
            throw SigilloError(.credentialDisabled, "the account is \(holder.state.label)")
        }
        try await self.audit.record(holder.id, "login", target: holder.id, outcome: "ok")
        return holder
    }

    /// Logs in and issues a short-lived bearer token (CSC `auth/login`).
    public func issueAccessToken(username: String, password: String, lifetime: TimeInterval = 1800) async throws -> (token: String, holder: Holder, expiresIn: Int) {
        let holder = try await self.login(username: username, password: password)
        let token = Secrets.token()
        let hash = Secrets.digest(token)
        let expiresAt = self.clock.now().addingTimeInterval(lifetime)
        try await self.store.createAccessToken(tokenHash: hash, holderID: holder.id, expiresAt: expiresAt)
        // As stored (whole seconds), so the cache and the database agree on when it expires.
        self.cache.remember(token: hash, HotPathCache.Token(holderID: holder.id, expiresAt: Date(timeIntervalSince1970: expiresAt.timeIntervalSince1970.rounded(.down))))
        return (token, holder, Int(lifetime))
    }

    /// The holder a bearer token belongs to.
    ///
    /// - Throws: `invalidToken` when unknown or revoked, `expiredToken` when expired.
    public func holderID(accessToken: String) async throws -> String {
        guard let holderID = try await self.accountHolder(tokenHash: Secrets.digest(accessToken)) else {
            throw SigilloError(.invalidToken, "the access token is not valid")
        }
        return holderID
    }

    /// The holder of the account token (`auth/login`, OAuth2 `scope=service`) with this digest, remembered in this node's
    /// cache for signHash (forgotten when the store no longer has it); nil when there is none.
    /// - Throws: `expiredToken` when it expired.
    private func accountHolder(tokenHash hash: [UInt8]) async throws -> String? {
        guard let entry = try await self.store.accessToken(tokenHash: hash) else {
            self.cache.forget(token: hash)
            return nil
        }
        guard entry.expiresAt > self.clock.now() else { throw SigilloError(.expiredToken, "the access token has expired") }
        self.cache.remember(token: hash, HotPathCache.Token(holderID: entry.holderID, expiresAt: entry.expiresAt))
        return entry.holderID
    }

    /// The holder of a bearer token this node checked before and that has not expired, without reading the database:
    /// only for `Signing.signHash`, which must be given the token to check it with the SAD's spending. Nil otherwise
    /// (then `holderID(accessToken:)`).
    public func cachedHolderID(accessToken: String) -> String? {
        guard let entry = self.cache.token(Secrets.digest(accessToken)), entry.expiresAt > self.clock.now() else { return nil }
        return entry.holderID
    }

    /// What a bearer token is: an account token (`auth/login`, OAuth2 `scope=service`) or an OAuth2 credential-scoped
    /// token, which is itself the SAD of its credential and digests (looked up in the SAD store by the same digest).
    ///
    /// - Throws: `invalidToken` when unknown, revoked or used up; `expiredToken` when expired.
    public func bearer(accessToken: String) async throws -> Bearer {
        let hash = Secrets.digest(accessToken)
        let now = self.clock.now()
        if let holderID = try await self.accountHolder(tokenHash: hash) {
            return Bearer(holderID: holderID, credentialID: nil)
        }
        guard let sad = try await self.store.sad(idHash: hash), sad.clientID != nil else {
            throw SigilloError(.invalidToken, "the access token is not valid")
        }
        guard sad.expiresAt > now else { throw SigilloError(.expiredToken, "the access token has expired") }
        guard sad.used < sad.numSignatures else { throw SigilloError(.invalidToken, "the access token has made every signature it authorized") }
        return Bearer(holderID: sad.holderID, credentialID: sad.credentialID)
    }

    /// Revokes a bearer token (CSC `auth/revoke`), audited under its holder (an unknown token changes nothing).
    public func revokeAccessToken(_ token: String) async throws {
        let hash = Secrets.digest(token)
        let holderID = try await self.store.accessToken(tokenHash: hash)?.holderID
        try await self.store.revokeAccessToken(tokenHash: hash)
        self.cache.forget(token: hash)
        try await self.audit.record(holderID ?? "anonymous", "auth.revoke", target: holderID ?? "token", outcome: holderID == nil ? "ignored" : "ok")
    }

    /// Checks username and password of an activated holder (any state after activation, revoked included) under the
    /// holder's password lock (`SecretAttempts`: the attempt is counted before Argon2id runs). Unknown users, and
    /// locked ones, cost the same Argon2id work and get the same answer as a wrong password, so neither timing nor
    /// answer tells which usernames exist. Failures are audited under `action`.
    ///
    /// - Throws: `invalidPassword` for an unknown user, a wrong password or a locked password alike.
    public func checkPassword(username: String, password: String, action: String = "selfservice.login") async throws -> Holder {
        let passwords = self.passwords
        let decoy: @Sendable () async throws -> Void = { _ = try await self.blocking.run { passwords.verify(password, encoded: passwords.decoy) } }
        guard let holder = try await self.store.holder(username: username.trimmingCharacters(in: .whitespaces).lowercased()),
              let stored = holder.passwordHash, holder.state.isActivated else {
            try await decoy()
            try await self.audit.record("anonymous", action, target: "account", outcome: "refused", details: "unknown user")
            throw SigilloError(.invalidPassword, "invalid username or password")
        }
        do {
            try await self.verifyPassword(password, of: holder, stored: stored, action: action, target: holder.id, whenLocked: decoy)
        } catch let error as SigilloError where error.code == .pinLocked || error.code == .invalidPassword {
            throw SigilloError(.invalidPassword, "invalid username or password")
        }
        return holder
    }

    /// Verifies the password of a known holder under the password lock (`checkPassword` for anonymous routes,
    /// `Authorization` for an authenticated one, which may say "PIN locked").
    func verifyPassword(_ password: String, of holder: Holder, stored: String, action: String, target: String,
                        whenLocked: @Sendable () async throws -> Void = {}) async throws {
        let passwords = self.passwords
        try await self.attempts.check(.password, holder: holder, action: action, target: target, whenLocked: whenLocked) {
            try await self.blocking.run { passwords.verify(password, encoded: stored) } ? .accepted : .rejected(reason: "wrong password")
        }
    }

    /// Checks a holder's user code under its lock: five wrong attempts in a row block it (only an operator can then
    /// act). Unknown usernames, holders without a user code and blocked codes cost the same Argon2id work.
    ///
    /// - Throws: `invalidRequest` when wrong, unknown or blocked (same message, so it tells an attacker nothing).
    public func checkUserCode(username: String, userCode: String) async throws -> Holder {
        let refused = SigilloError(.invalidRequest, "the username or user code is not valid")
        let passwords = self.passwords
        let normalized = userCode.uppercased().filter { $0 != "-" && !$0.isWhitespace }
        let formatted = stride(from: 0, to: normalized.count, by: 4).map { String(Array(normalized)[$0..<min($0 + 4, normalized.count)]) }.joined(separator: "-")
        let decoy: @Sendable () async throws -> Void = { _ = try await self.blocking.run { passwords.verify(formatted, encoded: passwords.decoy) } }
        guard let holder = try await self.store.holder(username: username.trimmingCharacters(in: .whitespaces).lowercased()),
              let stored = try await self.store.userCode(holderID: holder.id) else {
            try await decoy()
            try await self.audit.record("anonymous", "usercode.check", target: "account", outcome: "refused", details: "unknown user")
            throw refused
        }
        do {
            try await self.attempts.check(.userCode, holder: holder, action: "usercode.check", target: holder.id, whenLocked: decoy) {
                try await self.blocking.run { passwords.verify(formatted, encoded: stored) } ? .accepted : .rejected(reason: "wrong user code")
            }
        } catch let error as SigilloError where error.code == .invalidRequest {
            throw refused
        }
        return holder
    }
}

/// What a bearer token allows: the holder's account, or (credential-scoped) the signatures of one credential it is the SAD of.
public struct Bearer: Sendable, Equatable {
    public let holderID: String
    /// Set for an OAuth2 credential-scoped token: it signs with this credential (`signatures/signHash`) and does nothing else.
    public let credentialID: String?

    public init(holderID: String, credentialID: String?) {
        self.holderID = holderID
        self.credentialID = credentialID
    }
}
