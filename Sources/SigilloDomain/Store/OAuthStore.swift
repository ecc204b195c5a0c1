import Foundation

/// The OAuth2 authorization server's clients and its short-lived records (pushed requests, pending authorizations,
/// codes), each under the digest of its identifier.
public protocol OAuthStore: Sendable {
    /// - Throws: `conflict` when the id is taken.
    func insertOAuthClient(_ client: OAuthClient) async throws
    func oauthClient(id: String) async throws -> OAuthClient?
    /// Every client, oldest first.
    func oauthClients() async throws -> [OAuthClient]
    /// Deletes a client with its records, revokes its account tokens and deletes its credential tokens; false if unknown.
    func deleteOAuthClient(id: String) async throws -> Bool
    /// Stores a record (and forgets records that expired more than an hour before `now`).
    func insertOAuthGrant(_ grant: OAuthGrant, now: Date) async throws
    /// The record, used or not, expired or not.
    func oauthGrant(idHash: [UInt8]) async throws -> OAuthGrant?
    /// Marks an unused, unexpired record of `kind` used, with the digest of the token made from it, in one conditional
    /// update: of two requests racing, one gets true.
    func takeOAuthGrant(idHash: [UInt8], kind: OAuthGrantKind, now: Date, tokenHash: [UInt8]?) async throws -> Bool
}
