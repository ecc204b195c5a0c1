import Foundation

/// Signature activation data, stored as digests and spent atomically.
public protocol SADStore: Sendable {
    func insertSAD(_ sad: SADRecord) async throws
    func sad(idHash: [UInt8]) async throws -> SADRecord?
    /// Spends `count` signatures of the SAD if it is unexpired and has that many left; false otherwise.
    func consumeSAD(idHash: [UInt8], count: Int, now: Date) async throws -> Bool
    /// The hot path's write (CSC `signatures/signHash`): spends `spending.count` signatures of the SAD if it is
    /// this holder's for this credential, unexpired and has that many left, the credential row is still active at
    /// `credentialVersion`, and the access token (when given) is unrevoked and unexpired, all in one statement; and
    /// appends `spending.audit` to the audit chain when it spent. False, with nothing changed, otherwise.
    func spendSAD(_ spending: SADSpending) async throws -> Bool
    /// Gives back `count` signatures that were spent but not made (the token failed).
    func refundSAD(idHash: [UInt8], count: Int) async throws
    /// Extends an unexpired SAD's life; false if it already expired.
    func extendSAD(idHash: [UInt8], expiresAt: Date, now: Date) async throws -> Bool
    /// Deletes one SAD (a credential-scoped access token revoked, or made from a replayed code).
    func deleteSAD(idHash: [UInt8]) async throws
    /// Deletes every SAD of a credential (suspension, revocation, password reset).
    func deleteSADs(credentialID: String) async throws
}

/// The hot path's one write (`SADStore.spendSAD`): `count` signatures of a SAD spent, re-checking in the same
/// statement what this node may have read earlier (the credential's row version and status, the bearer token), with
/// the signature's audit event in the same transaction.
public struct SADSpending: Sendable {
    public var idHash: [UInt8]
    public var holderID: String
    public var credentialID: String
    public var count: Int
    public var now: Date
    /// The credential row's `version` as read (`CredentialStore.versionedCredential`): any change to the row since
    /// (revocation, suspension, a new key) makes the spend fail.
    public var credentialVersion: Int64
    /// The bearer token's digest when nothing else checked it for this request: it must be unrevoked and unexpired.
    public var accessTokenHash: [UInt8]?
    /// Appended to the audit chain with the spend (not when the spend fails).
    public var audit: AuditEvent

    public init(idHash: [UInt8], holderID: String, credentialID: String, count: Int, now: Date, credentialVersion: Int64, accessTokenHash: [UInt8]?, audit: AuditEvent) {
        self.idHash = idHash
        self.holderID = holderID
        self.credentialID = credentialID
        self.count = count
        self.now = now
        self.credentialVersion = credentialVersion
        self.accessTokenHash = accessTokenHash
        self.audit = audit
    }
}
