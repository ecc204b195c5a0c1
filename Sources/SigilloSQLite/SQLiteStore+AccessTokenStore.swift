import Foundation
import GRDB
import SigilloDomain

/// CSC bearer tokens, stored as digests.
extension SQLiteStore: AccessTokenStore {
    public func createAccessToken(tokenHash: [UInt8], holderID: String, expiresAt: Date, clientID: String?) async throws {
        try await self.write { db in
            try db.execute(sql: "INSERT INTO access_tokens (token_hash, holder_id, expires_at, client_id) VALUES (?, ?, ?, ?)",
                           arguments: [Data(tokenHash), holderID, Self.seconds(expiresAt), clientID])
        }
    }

    public func accessTokenClient(tokenHash: [UInt8]) async throws -> String? {
        try await self.database.read { db in
            try String.fetchOne(db, sql: "SELECT client_id FROM access_tokens WHERE token_hash = ? AND revoked = 0", arguments: [Data(tokenHash)])
        }
    }

    public func accessToken(tokenHash: [UInt8]) async throws -> (holderID: String, expiresAt: Date)? {
        try await self.database.read { db in
            guard let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT holder_id, expires_at FROM access_tokens WHERE token_hash = ? AND revoked = 0"), arguments: [Data(tokenHash)]) else {
                return nil
            }
            return (row["holder_id"], Self.date(row["expires_at"]))
        }
    }

    public func revokeAccessToken(tokenHash: [UInt8]) async throws {
        try await self.write { db in try db.execute(sql: "UPDATE access_tokens SET revoked = 1 WHERE token_hash = ?", arguments: [Data(tokenHash)]) }
    }

    public func revokeAccessTokens(holderID: String) async throws {
        try await self.write { db in try db.execute(sql: "UPDATE access_tokens SET revoked = 1 WHERE holder_id = ?", arguments: [holderID]) }
    }
}
