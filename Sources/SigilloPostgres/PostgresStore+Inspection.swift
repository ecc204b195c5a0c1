import Foundation
import Logging
import PostgresNIO
import SigilloDomain

/// What `sigillo doctor` reads of a PostgreSQL database before a start, on one connection, changing nothing.
extension PostgresStore {
    /// The database's schema version (0 when no migration ran) and the seed key check it was sealed with (nil if never).
    public static func inspect(settings: PostgresSettings) async throws -> (schemaVersion: Int, keyCheck: [UInt8]?, newestAudit: Date?) {
        try await self.withProbeConnection(settings) { connection in
            func exists(_ table: String) async throws -> Bool {
                try await Self.first(connection, "SELECT to_regclass(\(table)) IS NOT NULL AS present")?["present"].decode(Bool.self) == true
            }
            var version = 0
            if try await exists("schema_migrations") {
                version = try await Self.first(connection, "SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations")?["version"].decode(Int.self) ?? 0
            }
            var check: [UInt8]?
            if try await exists("seed_vault") {
                check = try await Self.first(connection, "SELECT key_check FROM seed_vault WHERE id = 1").map { [UInt8](try $0.data("key_check")) }
            }
            var newest: Date?
            if try await exists("audit_events"),
               let seconds = try await Self.first(connection, "SELECT MAX(time) AS time FROM audit_events")?["time"].decode(Int64?.self) {
                newest = Date(timeIntervalSince1970: Double(seconds))
            }
            return (version, check, newest)
        }
    }
}
