import Foundation

/// Counts wrong passwords and one-time passwords against a credential (consecutive failures lock it at
/// `Lockout.limit`), audits each, and throws the error the client sees.
struct FailureCounter: Sendable {
    let store: any CredentialStore
    let audit: AuditLog

    /// Counts a failure, audits it, and throws the matching error (a lock at the limit).
    func fail(_ credential: Credential, kind: FailureKind, reason: String, code: SigilloError.Code? = nil) async throws -> Never {
        let failures = try await self.store.recordFailure(credentialID: credential.id, kind: kind)
        let locked = failures >= Lockout.limit
        try await self.audit.record(credential.holderID, "credential.authorize", target: credential.id, outcome: locked ? "locked" : "refused",
                             details: "\(reason) (\(failures)/\(Lockout.limit))")
        switch (kind, locked) {
        case (.password, true): throw SigilloError(.pinLocked, "PIN locked after \(Lockout.limit) wrong passwords")
        case (.otp, true): throw SigilloError(.otpLocked, "OTP locked after \(Lockout.limit) wrong one-time passwords")
        case (.password, false): throw SigilloError(.invalidPassword, "the password is not valid")
        case (.otp, false): throw SigilloError(code ?? .invalidOTP, code == .otpReplayed ? "this one-time password was already used" : "the one-time password is not valid")
        }
    }
}
