import Foundation
import PostgresNIO
import SigilloDomain

/// The OAuth2 clients and their short-lived records; a record is spent by one conditional `UPDATE`, atomic across nodes.
extension PostgresStore: OAuthStore {
    public func insertOAuthClient(_ client: OAuthClient) async throws {
        let uris = String(decoding: try JSONEncoder().encode(client.redirectURIs), as: UTF8.self)
        try await self.execute("""
            INSERT INTO oauth_clients (id, name, secret_hash, public_key, redirect_uris, created_at)
            VALUES (\(client.id), \(client.name), \(client.secretHash.map { Data($0) }), \(client.publicKeyPEM), \(uris), \(Self.seconds(client.createdAt)))
            """)
    }

    public func oauthClient(id: String) async throws -> OAuthClient? {
        try await self.first("SELECT * FROM oauth_clients WHERE id = \(id)").map(Self.oauthClient)
    }

    public func oauthClients() async throws -> [OAuthClient] {
        try await self.rows("SELECT * FROM oauth_clients ORDER BY created_at, id").map(Self.oauthClient)
    }

    public func deleteOAuthClient(id: String) async throws -> Bool {
        try await self.transaction { connection in
            guard try await Self.first(connection, "DELETE FROM oauth_clients WHERE id = \(id) RETURNING 1") != nil else { return false }
            try await Self.execute(connection, "DELETE FROM oauth_grants WHERE client_id = \(id)")
            try await Self.execute(connection, "DELETE FROM sads WHERE client_id = \(id)")
            try await Self.execute(connection, "UPDATE access_tokens SET revoked = TRUE WHERE client_id = \(id)")
            return true
        }
    }

    public func insertOAuthGrant(_ grant: OAuthGrant, now: Date) async throws {
        try await self.transaction { connection in
            try await Self.execute(connection, "DELETE FROM oauth_grants WHERE expires_at < \(Self.milliseconds(now.addingTimeInterval(-3600)))")
            try await Self.execute(connection, """
                INSERT INTO oauth_grants (id_hash, kind, client_id, payload, expires_at, used, token_hash)
                VALUES (\(Data(grant.idHash)), \(grant.kind.rawValue), \(grant.clientID), \(grant.payload), \(Self.milliseconds(grant.expiresAt)), \(grant.used),
                        \(grant.tokenHash.map { Data($0) }))
                """)
        }
    }

    public func oauthGrant(idHash: [UInt8]) async throws -> OAuthGrant? {
        guard let row = try await self.first("SELECT * FROM oauth_grants WHERE id_hash = \(Data(idHash))"),
              let kind = OAuthGrantKind(rawValue: try row.text("kind")) else { return nil }
        return OAuthGrant(
            idHash: idHash, kind: kind, clientID: try row.text("client_id"), payload: try row.data("payload"),
            expiresAt: Self.millisecondDate(try row.integer("expires_at")), used: try row["used"].decode(Bool.self),
            tokenHash: try row.optionalData("token_hash").map { [UInt8]($0) })
    }

    public func takeOAuthGrant(idHash: [UInt8], kind: OAuthGrantKind, now: Date, tokenHash: [UInt8]?) async throws -> Bool {
        try await self.first("""
            UPDATE oauth_grants SET used = TRUE, token_hash = \(tokenHash.map { Data($0) })
            WHERE id_hash = \(Data(idHash)) AND kind = \(kind.rawValue) AND NOT used AND expires_at > \(Self.milliseconds(now)) RETURNING 1
            """) != nil
    }

    static func oauthClient(_ row: PostgresRandomAccessRow) throws -> OAuthClient {
        OAuthClient(id: try row.text("id"), name: try row.text("name"), secretHash: try row.optionalData("secret_hash").map { [UInt8]($0) },
                    publicKeyPEM: try row.optionalText("public_key"),
                    redirectURIs: try JSONDecoder().decode([String].self, from: Data(try row.text("redirect_uris").utf8)), createdAt: Self.date(try row.integer("created_at")))
    }
}
