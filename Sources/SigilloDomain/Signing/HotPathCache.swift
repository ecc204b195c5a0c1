import Foundation
import Synchronization

/// What `signatures/signHash` read before, kept in this process so that a signature needs one database write and no
/// read: bearer tokens (digest → holder, expiry), credentials with their row version, and SADs (their immutable part:
/// holder, credential, hash algorithm, the authorized digests).
///
/// Nothing here is trusted on its own. Every use goes through `SADStore.spendSAD`, which checks in the same statement
/// that spends the SAD that the token is unrevoked and unexpired and that the credential row is active at the cached
/// version (any update of the row changes its version), and the SAD's count and expiry are the database's. So a
/// revocation, suspension, new key or password change made on any node is seen by the next signature everywhere; a
/// spend refused that way goes the slow way (fresh reads, the precise refusal) and refreshes the entries.
///
/// Each map holds at most `limit` entries; when full it starts over (a cache miss costs a read, never a wrong answer).
final class HotPathCache: Sendable {
    struct Token: Sendable {
        let holderID: String
        let expiresAt: Date
    }

    struct VersionedCredential: Sendable {
        let credential: Credential
        let version: Int64
    }

    struct AuthorizedSAD: Sendable {
        let record: SADRecord
        let hashes: Set<[UInt8]>
    }

    private struct Maps {
        var tokens: [[UInt8]: Token] = [:]
        var credentials: [String: VersionedCredential] = [:]
        var sads: [[UInt8]: AuthorizedSAD] = [:]
    }

    let limit: Int
    private let maps = Mutex(Maps())

    init(limit: Int = 10_000) {
        self.limit = limit
    }

    func token(_ hash: [UInt8]) -> Token? {
        self.maps.withLock { $0.tokens[hash] }
    }

    func remember(token hash: [UInt8], _ token: Token) {
        self.maps.withLock { maps in
            if maps.tokens.count >= self.limit { maps.tokens.removeAll() }
            maps.tokens[hash] = token
        }
    }

    func forget(token hash: [UInt8]) {
        _ = self.maps.withLock { $0.tokens.removeValue(forKey: hash) }
    }

    func credential(_ id: String) -> VersionedCredential? {
        self.maps.withLock { $0.credentials[id] }
    }

    func remember(_ credential: Credential, version: Int64) {
        self.maps.withLock { maps in
            if maps.credentials.count >= self.limit { maps.credentials.removeAll() }
            maps.credentials[credential.id] = VersionedCredential(credential: credential, version: version)
        }
    }

    func forget(credential id: String) {
        _ = self.maps.withLock { $0.credentials.removeValue(forKey: id) }
    }

    func sad(_ idHash: [UInt8]) -> AuthorizedSAD? {
        self.maps.withLock { $0.sads[idHash] }
    }

    func remember(_ record: SADRecord) {
        let entry = AuthorizedSAD(record: record, hashes: Set(record.hashes))
        self.maps.withLock { maps in
            if maps.sads.count >= self.limit { maps.sads.removeAll() }
            maps.sads[record.idHash] = entry
        }
    }

    func forget(sad idHash: [UInt8]) {
        _ = self.maps.withLock { $0.sads.removeValue(forKey: idHash) }
    }
}
