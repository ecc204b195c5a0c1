import Foundation

/// Signature activation data, stored as digests and spent atomically.
public protocol SADStore: Sendable {
    func insertSAD(_ sad: SADRecord) async throws
    func sad(idHash: [UInt8]) async throws -> SADRecord?
    /// Spends `count` signatures of the SAD if it is unexpired and has that many left; false otherwise.
    func consumeSAD(idHash: [UInt8], count: Int, now: Date) async throws -> Bool
    /// Gives back `count` signatures that were spent but not made (the token failed).
    func refundSAD(idHash: [UInt8], count: Int) async throws
    /// Extends an unexpired SAD's life; false if it already expired.
    func extendSAD(idHash: [UInt8], expiresAt: Date, now: Date) async throws -> Bool
    /// Deletes one SAD (a credential-scoped access token revoked, or made from a replayed code).
    func deleteSAD(idHash: [UInt8]) async throws
    /// Deletes every SAD of a credential (suspension, revocation, password reset).
    func deleteSADs(credentialID: String) async throws
}
