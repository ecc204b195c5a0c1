import Foundation
import GRDB
import SigilloDomain

/// The OAuth2 clients and their short-lived records; a record is spent by one conditional `UPDATE`.
extension SQLiteStore: OAuthStore {
    public func insertOAuthClient(_ client: OAuthClient) async throws {
        let uris = String(decoding: try JSONEncoder().encode(client.redirectURIs), as: UTF8.self)
        try await self.write { db in
            try db.execute(sql: "INSERT INTO oauth_clients (id, name, secret_hash, public_key, redirect_uris, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [client.id, client.name, client.secretHash.map { Data($0) }, client.publicKeyPEM, uris, Self.seconds(client.createdAt)])
        }
    }

    public func oauthClient(id: String) async throws -> OAuthClient? {
        try await self.database.read { db in try Row.fetchOne(db, sql: "SELECT * FROM oauth_clients WHERE id = ?", arguments: [id]).map(Self.oauthClient) }
    }

    public func oauthClients() async throws -> [OAuthClient] {
        try await self.database.read { db in try Row.fetchAll(db, sql: "SELECT * FROM oauth_clients ORDER BY created_at, id").map(Self.oauthClient) }
    }

    public func deleteOAuthClient(id: String) async throws -> Bool {
        try await self.write { db in
            try db.execute(sql: "DELETE FROM oauth_clients WHERE id = ?", arguments: [id])
            guard db.changesCount == 1 else { return false }
            try db.execute(sql: """
                DELETE FROM oauth_grants WHERE client_id = ?;
                DELETE FROM sads WHERE client_id = ?;
                UPDATE access_tokens SET revoked = 1 WHERE client_id = ?;
                """, arguments: [id, id, id])
            return true
        }
    }

    public func insertOAuthGrant(_ grant: OAuthGrant, now: Date) async throws {
        try await self.write { db in
            try db.execute(sql: "DELETE FROM oauth_grants WHERE expires_at < ?", arguments: [Self.milliseconds(now.addingTimeInterval(-3600))])
            try db.execute(
                sql: "INSERT INTO oauth_grants (id_hash, kind, client_id, payload, expires_at, used, token_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [Data(grant.idHash), grant.kind.rawValue, grant.clientID, grant.payload, Self.milliseconds(grant.expiresAt), grant.used,
                            grant.tokenHash.map { Data($0) }])
        }
    }

    public func oauthGrant(idHash: [UInt8]) async throws -> OAuthGrant? {
        try await self.database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM oauth_grants WHERE id_hash = ?", arguments: [Data(idHash)]),
                  let kind = OAuthGrantKind(rawValue: row["kind"]) else { return nil }
            return OAuthGrant(
                idHash: idHash, kind: kind, clientID: row["client_id"], payload: row["payload"], expiresAt: Date(timeIntervalSince1970: Double(row["expires_at"] as Int64) / 1000),
                used: row["used"], tokenHash: (row["token_hash"] as Data?).map { [UInt8]($0) })
        }
    }

    public func takeOAuthGrant(idHash: [UInt8], kind: OAuthGrantKind, now: Date, tokenHash: [UInt8]?) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE oauth_grants SET used = 1, token_hash = ? WHERE id_hash = ? AND kind = ? AND used = 0 AND expires_at > ?",
                arguments: [tokenHash.map { Data($0) }, Data(idHash), kind.rawValue, Self.milliseconds(now)])
            return db.changesCount == 1
        }
    }

    static func oauthClient(_ row: Row) throws -> OAuthClient {
        let uris = try JSONDecoder().decode([String].self, from: Data((row["redirect_uris"] as String).utf8))
        return OAuthClient(id: row["id"], name: row["name"], secretHash: (row["secret_hash"] as Data?).map { [UInt8]($0) }, publicKeyPEM: row["public_key"],
                           redirectURIs: uris, createdAt: Self.date(row["created_at"]))
    }
}
