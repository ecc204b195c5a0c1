import Foundation

/// CSC bearer tokens (auth/login), stored as digests.
public protocol AccessTokenStore: Sendable {
    func createAccessToken(tokenHash: [UInt8], holderID: String, expiresAt: Date) async throws
    /// The holder of an unrevoked token and when it expires; nil if unknown or revoked.
    func accessToken(tokenHash: [UInt8]) async throws -> (holderID: String, expiresAt: Date)?
    func revokeAccessToken(tokenHash: [UInt8]) async throws
    /// Ends every session of a holder (password reset, suspension).
    func revokeAccessTokens(holderID: String) async throws
}
