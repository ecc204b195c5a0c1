import Foundation

/// Single-use password-reset links, stored as digests.
public protocol PasswordResetStore: Sendable {
    /// Stores the SHA-256 of a single-use password-reset token.
    func createPasswordReset(tokenHash: [UInt8], holderID: String, createdAt: Date, expiresAt: Date) async throws
    /// The holder, expiry and use time of a reset token.
    func passwordReset(tokenHash: [UInt8]) async throws -> (holderID: String, expiresAt: Date, usedAt: Date?)?
    /// Spends an unused, unexpired reset token and sets the new password hash; ends the holder's sessions (access
    /// tokens), deletes their SADs and clears password failures, all or nothing. Nil if the token was not usable.
    func completePasswordReset(tokenHash: [UInt8], passwordHash: String, now: Date) async throws -> String?
}
