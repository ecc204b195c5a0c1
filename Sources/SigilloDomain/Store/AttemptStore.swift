import Foundation

/// A holder's secret that locks after `Lockout.limit` consecutive wrong answers.
public enum SecretKind: String, Sendable, CaseIterable, Codable {
    /// The password (CSC PIN): every route that takes it.
    case password
    /// The one-time password, whatever the device (app, display token, SMS): every route that takes one.
    case otp
    /// The user (emergency) code.
    case userCode = "user_code"
}

/// The consecutive wrong answers counted against each of a holder's secrets.
public struct SecretFailures: Sendable, Equatable {
    public var password = 0
    public var otp = 0
    public var userCode = 0

    public init(password: Int = 0, otp: Int = 0, userCode: Int = 0) {
        self.password = password
        self.otp = otp
        self.userCode = userCode
    }

    /// Locked after too many wrong passwords (CSC "PIN locked").
    public var pinLocked: Bool { self.password >= Lockout.limit }
    /// Locked after too many wrong one-time passwords.
    public var otpLocked: Bool { self.otp >= Lockout.limit }
    /// The user code is blocked (only an operator can act).
    public var userCodeBlocked: Bool { self.userCode >= Lockout.limit }
}

/// What reserving an attempt found.
public enum AttemptReservation: Sendable, Equatable {
    /// Counted as in flight: verify, then `resolveAttempt`.
    case reserved
    /// `limit` wrong answers are settled: the secret is locked; nothing counted.
    case locked
    /// Settled failures and attempts in flight fill the limit: wait for those to resolve; nothing counted.
    case busy
}

/// Attempt reservation: a secret check is counted in the store *before* the secret is verified, by one
/// conditional increment that refuses when settled failures plus attempts in flight reach the limit, and resolved
/// after the check (a right answer clears the failures, a wrong one settles as a failure). So at most `limit`
/// wrong answers are ever evaluated per lock, however many requests race and however many nodes serve them, and
/// right answers in flight never read as a lock.
public protocol AttemptStore: Sendable {
    /// Counts one attempt at `secret` in flight unless settled failures and attempts in flight already reach `limit`.
    /// In-flight counts older than `lease` (a node that died mid-check) no longer hold. Atomic across nodes.
    func reserveAttempt(holderID: String, secret: SecretKind, limit: Int, now: Date, lease: TimeInterval) async throws -> AttemptReservation
    /// Ends a reserved attempt: right clears the failures, wrong settles one more; returns the settled failures.
    func resolveAttempt(holderID: String, secret: SecretKind, right: Bool) async throws -> Int
    /// Clears the failures (an operator's unlock, a password reset, a new device or user code).
    func clearAttempts(holderID: String, secrets: Set<SecretKind>) async throws
    /// The counts now (zero for a secret never tried).
    func secretFailures(holderID: String) async throws -> SecretFailures
}
