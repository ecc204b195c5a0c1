import Foundation
import GRDB
import SigilloDomain

/// Single-use password-reset links, stored as digests.
extension SQLiteStore: PasswordResetStore {
    public func createPasswordReset(tokenHash: [UInt8], holderID: String, createdAt: Date, expiresAt: Date) async throws {
        try await self.write { db in
            try db.execute(sql: "INSERT INTO password_resets (token_hash, holder_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                           arguments: [Data(tokenHash), holderID, Self.seconds(createdAt), Self.seconds(expiresAt)])
        }
    }

    public func passwordReset(tokenHash: [UInt8]) async throws -> (holderID: String, expiresAt: Date, usedAt: Date?)? {
        try await self.database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM password_resets WHERE token_hash = ?", arguments: [Data(tokenHash)]) else { return nil }
            return (row["holder_id"], Self.date(row["expires_at"]), (row["used_at"] as Int64?).map(Self.date))
        }
    }

    public func completePasswordReset(tokenHash: [UInt8], passwordHash: String, now: Date) async throws -> String? {
        try await self.write { db in
            guard let holderID = try String.fetchOne(db, sql: "SELECT holder_id FROM password_resets WHERE token_hash = ?", arguments: [Data(tokenHash)]) else { return nil }
            try db.execute(sql: "UPDATE password_resets SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
                           arguments: [Self.seconds(now), Data(tokenHash), Self.seconds(now)])
            guard db.changesCount == 1 else { return nil }
            // Every other outstanding reset link of the holder dies too.
            try db.execute(sql: "UPDATE password_resets SET used_at = ? WHERE holder_id = ? AND used_at IS NULL", arguments: [Self.seconds(now), holderID])
            try db.execute(sql: "UPDATE holders SET password_hash = ? WHERE id = ?", arguments: [passwordHash, holderID])
            try db.execute(sql: "UPDATE access_tokens SET revoked = 1 WHERE holder_id = ?", arguments: [holderID])
            try db.execute(sql: "DELETE FROM sads WHERE holder_id = ?", arguments: [holderID])
            try Self.clearAttempts(holderID: holderID, secret: .password, db: db)
            return holderID
        }
    }
}
