import Foundation
import GRDB
import PKCS11
import SigilloDomain

/// Signature activation data: consumption is one conditional `UPDATE` through group commit.
extension SQLiteStore: SADStore {
    public func insertSAD(_ sad: SADRecord) async throws {
        try await self.write { db in
            try db.execute(
                sql: "INSERT INTO sads (id_hash, holder_id, credential_id, hash_algorithm, hashes, num_signatures, used, expires_at, authorized_at, client_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [Data(sad.idHash), sad.holderID, sad.credentialID, sad.hashAlgorithm.rawValue, Data(sad.hashes.joined()), sad.numSignatures, sad.used,
                            Self.milliseconds(sad.expiresAt), Self.milliseconds(sad.authorizedAt), sad.clientID])
        }
    }

    public func sad(idHash: [UInt8]) async throws -> SADRecord? {
        try await self.database.read { db in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM sads WHERE id_hash = ?"), arguments: [Data(idHash)]) else { return nil }
            guard let algorithm = HashAlgorithm(rawValue: row["hash_algorithm"]) else { return nil }
            let blob = [UInt8](row["hashes"] as Data)
            let hashes = stride(from: 0, to: blob.count, by: algorithm.digestLength).map { Array(blob[$0..<min($0 + algorithm.digestLength, blob.count)]) }
            return SADRecord(
                idHash: idHash, holderID: row["holder_id"], credentialID: row["credential_id"], hashAlgorithm: algorithm, hashes: hashes,
                numSignatures: row["num_signatures"], used: row["used"], expiresAt: Date(timeIntervalSince1970: Double(row["expires_at"] as Int64) / 1000),
                authorizedAt: Date(timeIntervalSince1970: Double(row["authorized_at"] as Int64) / 1000), clientID: row["client_id"])
        }
    }

    public func consumeSAD(idHash: [UInt8], count: Int, now: Date) async throws -> Bool {
        // One conditional UPDATE: two requests racing for the last signatures cannot both pass.
        try await self.groupCommit.write { db in
            try db.cachedStatement(sql: "UPDATE sads SET used = used + ? WHERE id_hash = ? AND used + ? <= num_signatures AND expires_at > ?")
                .execute(arguments: [count, Data(idHash), count, Self.milliseconds(now)])
            return db.changesCount == 1
        }
    }

    public func spendSAD(_ spending: SADSpending) async throws -> Bool {
        // One conditional UPDATE re-checks what the caller may have cached (credential row version, token); the audit
        // event goes in the same savepoint of the same group-committed transaction.
        try await self.groupCommit.write { db in
            let token = spending.accessTokenHash.map { Data($0) }
            try db.cachedStatement(sql: """
                UPDATE sads SET used = used + ? WHERE id_hash = ? AND holder_id = ? AND credential_id = ? AND used + ? <= num_signatures AND expires_at > ?
                    AND EXISTS (SELECT 1 FROM credentials WHERE id = ? AND version = ? AND status = 'active')
                    AND (? IS NULL OR EXISTS (SELECT 1 FROM access_tokens WHERE token_hash = ? AND holder_id = ? AND revoked = 0 AND expires_at > ?))
                """).execute(arguments: [
                    spending.count, Data(spending.idHash), spending.holderID, spending.credentialID, spending.count, Self.milliseconds(spending.now),
                    spending.credentialID, spending.credentialVersion,
                    token, token, spending.holderID, Self.seconds(spending.now),
                ])
            guard db.changesCount == 1 else { return false }
            try Self.appendAudit(db, spending.audit, at: spending.now)
            return true
        }
    }

    public func refundSAD(idHash: [UInt8], count: Int) async throws {
        try await self.write { db in
            try db.execute(sql: "UPDATE sads SET used = MAX(used - ?, 0) WHERE id_hash = ?", arguments: [count, Data(idHash)])
        }
    }

    public func extendSAD(idHash: [UInt8], expiresAt: Date, now: Date) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE sads SET expires_at = ? WHERE id_hash = ? AND expires_at > ? AND used < num_signatures",
                arguments: [Self.milliseconds(expiresAt), Data(idHash), Self.milliseconds(now)])
            return db.changesCount == 1
        }
    }

    public func deleteSAD(idHash: [UInt8]) async throws {
        try await self.write { db in try db.execute(sql: "DELETE FROM sads WHERE id_hash = ?", arguments: [Data(idHash)]) }
    }

    public func deleteSADs(credentialID: String) async throws {
        try await self.write { db in try db.execute(sql: "DELETE FROM sads WHERE credential_id = ?", arguments: [credentialID]) }
    }
}
