import Foundation

/// Who is asking: username and password (CSC `auth/login` and every self-service route), bearer tokens, and the
/// holder's user (emergency) code. Wrong passwords count towards the lock of every credential of the holder.
public struct Authentication: Sendable {
    let store: any HolderStore & CredentialStore & AccessTokenStore
    let passwords: PasswordHasher
    let blocking: BlockingExecutor
    let audit: AuditLog
    let clock: ServiceClock

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
        try await self.store.createAccessToken(tokenHash: Secrets.digest(token), holderID: holder.id, expiresAt: self.clock.now().addingTimeInterval(lifetime))
        return (token, holder, Int(lifetime))
    }

    /// The holder a bearer token belongs to.
    ///
    /// - Throws: `invalidToken` when unknown or revoked, `expiredToken` when expired.
    public func holderID(accessToken: String) async throws -> String {
        guard let entry = try await self.store.accessToken(tokenHash: Secrets.digest(accessToken)) else {
            throw SigilloError(.invalidToken, "the access token is not valid")
        }
        guard entry.expiresAt > self.clock.now() else { throw SigilloError(.expiredToken, "the access token has expired") }
        return entry.holderID
    }

    /// Revokes a bearer token (CSC `auth/revoke`).
    public func revokeAccessToken(_ token: String) async throws {
        try await self.store.revokeAccessToken(tokenHash: Secrets.digest(token))
    }

    /// Checks username and password of an activated holder (any state after activation, revoked included), counting
    /// a wrong password against every credential not revoked. Unknown users cost the same work, so timing does not
    /// tell which usernames exist. Failures are audited under `action`.
    public func checkPassword(username: String, password: String, action: String = "selfservice.login") async throws -> Holder {
        let passwords = self.passwords
        guard let holder = try await self.store.holder(username: username.trimmingCharacters(in: .whitespaces).lowercased()),
              let stored = holder.passwordHash, holder.state.isActivated else {
            _ = try await self.blocking.run { passwords.verify(password, encoded: PasswordHasher.decoy) }
            try await self.audit.record("anonymous", action, target: "account", outcome: "refused", details: "unknown user")
            throw SigilloError(.invalidPassword, "invalid username or password")
        }
        let credentials = try await self.store.credentials(holderID: holder.id).filter { $0.status != .revoked }
        if credentials.contains(where: { $0.pinLocked }) {
            throw SigilloError(.pinLocked, "PIN locked: too many wrong passwords; reset the password or ask an operator to unlock")
        }
        guard try await self.blocking.run({ passwords.verify(password, encoded: stored) }) else {
            for credential in credentials { _ = try await self.store.recordFailure(credentialID: credential.id, kind: .password) }
            try await self.audit.record(holder.id, action, target: holder.id, outcome: "refused", details: "wrong password")
            throw SigilloError(.invalidPassword, "invalid username or password")
        }
        return holder
    }

    /// Checks a holder's user code; five wrong attempts in a row block it (only an operator can then act).
    ///
    /// - Throws: `invalidRequest` when wrong or blocked (same message, so it tells an attacker nothing).
    public func checkUserCode(username: String, userCode: String) async throws -> Holder {
        let refused = SigilloError(.invalidRequest, "the username or user code is not valid")
        guard let holder = try await self.store.holder(username: username.lowercased()),
              let stored = try await self.store.userCode(holderID: holder.id) else {
            throw refused
        }
        guard stored.failures < Lockout.limit else {
            try await self.audit.record(holder.id, "usercode.check", target: holder.id, outcome: "refused", details: "blocked")
            throw refused
        }
        let passwords = self.passwords
        let normalized = userCode.uppercased().filter { $0 != "-" && !$0.isWhitespace }
        let formatted = stride(from: 0, to: normalized.count, by: 4).map { String(Array(normalized)[$0..<min($0 + 4, normalized.count)]) }.joined(separator: "-")
        let ok = try await self.blocking.run { passwords.verify(formatted, encoded: stored.hash) }
        let failures = try await self.store.recordUserCodeAttempt(holderID: holder.id, success: ok)
        guard ok else {
            try await self.audit.record(holder.id, "usercode.check", target: holder.id, outcome: "refused", details: "wrong user code (\(failures)/\(Lockout.limit))")
            throw refused
        }
        return holder
    }
}

extension PasswordHasher {
    /// A hash of a random password, verified against when the username is unknown so both paths cost the same.
    static let decoy: String = (try? PasswordHasher().hash(Secrets.token())) ?? ""
}
