import Foundation

/// The lock on every secret check (password, OTP, user code). The attempt is reserved in the store — counted,
/// by one conditional increment that refuses at `Lockout.limit` — *before* the secret is verified, and the count
/// is cleared after a right answer. So however many requests race, on however many nodes, at most `Lockout.limit`
/// consecutive wrong answers are ever evaluated before the lock; a locked secret is refused without being checked.
///
/// Each refusal is audited with its count; the answer that locks also tells the holder by mail, since a locked
/// account answers anonymous callers exactly like a wrong password (no enumeration) and the holder must learn it.
struct SecretAttempts: Sendable {
    let store: any AttemptStore
    let audit: AuditLog
    let mail: HolderMail
    let clock: ServiceClock
    let counters: OperationalCounters

    /// What a check found.
    enum Verdict: Sendable {
        case accepted
        /// Wrong; `code` overrides the error for the secret (e.g. `otpReplayed`).
        case rejected(reason: String, code: SigilloError.Code? = nil)
    }

    /// Verifies a secret of `holder` under a reserved attempt.
    ///
    /// - Parameters:
    ///   - whenLocked: runs when the secret is already locked and nothing is verified — the anonymous routes spend
    ///     the same work there (a decoy Argon2id verification) so that a locked account costs what any other does.
    ///   - verify: the check itself; it runs only after the attempt is counted.
    /// - Throws: the secret's `locked` error when locked (before, or by this answer); its `invalid` error when wrong.
    func check(_ secret: SecretKind, holder: Holder, action: String, target: String,
               whenLocked: @Sendable () async throws -> Void = {}, verify: () async throws -> Verdict) async throws {
        var reservation = try await self.reserve(secret, holder: holder)
        // Busy: right answers still in flight fill the limit (a client sending many requests at once). They resolve
        // within one Argon2id or OTP check, so wait a little rather than answer "locked" to a holder who is not.
        var waits = 0
        while reservation == .busy, waits < Self.busyWaits {
            try await Task.sleep(for: .milliseconds(25))
            waits += 1
            reservation = try await self.reserve(secret, holder: holder)
        }
        switch reservation {
        case .reserved: break
        case .locked:
            try await whenLocked()
            try await self.audit.record(holder.id, action, target: target, outcome: "refused", details: "\(secret.rawValue) locked")
            throw Self.lockedError(secret)
        case .busy:
            try await self.audit.record(holder.id, action, target: target, outcome: "refused", details: "\(secret.rawValue) checks saturated")
            throw SigilloError(.tooManyRequests, "too many checks at once for this account; try again")
        }
        let verdict: Verdict
        do {
            verdict = try await verify()
        } catch {
            // An error inside the check settles as a failure: a failing check is no free try.
            _ = try? await self.store.resolveAttempt(holderID: holder.id, secret: secret, right: false)
            throw error
        }
        switch verdict {
        case .accepted:
            _ = try await self.store.resolveAttempt(holderID: holder.id, secret: secret, right: true)
        case .rejected(let reason, let code):
            let count = try await self.store.resolveAttempt(holderID: holder.id, secret: secret, right: false)
            let locked = count >= Lockout.limit
            try await self.audit.record(holder.id, action, target: target, outcome: locked ? "locked" : "refused",
                                        details: "\(reason) (\(count)/\(Lockout.limit))")
            if locked {
                self.counters.locked(secret)
                try await self.mail.send(to: holder, MailTemplates.lockNotice(name: holder.fullName, secret: secret))
                throw Self.lockedError(secret)
            }
            throw Self.invalidError(secret, code: code)
        }
    }

    /// How many times a busy reservation is retried (25 ms apart) before the answer is "too many requests".
    static let busyWaits = 80
    /// How long an attempt in flight holds its place (a node that dies mid-check frees it after this).
    static let lease: TimeInterval = 60

    private func reserve(_ secret: SecretKind, holder: Holder) async throws -> AttemptReservation {
        try await self.store.reserveAttempt(holderID: holder.id, secret: secret, limit: Lockout.limit, now: self.clock.now(), lease: Self.lease)
    }

    static func lockedError(_ secret: SecretKind) -> SigilloError {
        switch secret {
        case .password: SigilloError(.pinLocked, "PIN locked after \(Lockout.limit) wrong passwords")
        case .otp: SigilloError(.otpLocked, "OTP locked after \(Lockout.limit) wrong one-time passwords")
        case .userCode: SigilloError(.invalidRequest, "the username or user code is not valid")
        }
    }

    static func invalidError(_ secret: SecretKind, code: SigilloError.Code? = nil) -> SigilloError {
        switch (secret, code) {
        case (.otp, .otpReplayed?): SigilloError(.otpReplayed, "this one-time password was already used")
        case (.password, _): SigilloError(.invalidPassword, "the password is not valid")
        case (.otp, _): SigilloError(code ?? .invalidOTP, "the one-time password is not valid")
        case (.userCode, _): SigilloError(.invalidRequest, "the username or user code is not valid")
        }
    }
}
