import Foundation

/// CSC bearer tokens (auth/login), stored as digests.
public protocol AccessTokenStore: Sendable {
    /// - Parameter clientID: the OAuth2 client a `service` token was issued to (nil for `auth/login`).
    func createAccessToken(tokenHash: [UInt8], holderID: String, expiresAt: Date, clientID: String?) async throws
    /// The OAuth2 client an unrevoked token was issued to; nil for an `auth/login` token or an unknown one.
    func accessTokenClient(tokenHash: [UInt8]) async throws -> String?
    /// The holder of an unrevoked token and when it expires; nil if unknown or revoked.
    func accessToken(tokenHash: [UInt8]) async throws -> (holderID: String, expiresAt: Date)?
    func revokeAccessToken(tokenHash: [UInt8]) async throws
    /// Ends every session of a holder (password reset, suspension).
    func revokeAccessTokens(holderID: String) async throws
}

extension AccessTokenStore {
    /// An `auth/login` token.
    public func createAccessToken(tokenHash: [UInt8], holderID: String, expiresAt: Date) async throws {
        try await self.createAccessToken(tokenHash: tokenHash, holderID: holderID, expiresAt: expiresAt, clientID: nil)
    }
}
