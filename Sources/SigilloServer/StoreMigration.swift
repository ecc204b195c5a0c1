import Foundation
import Logging
import SigilloDomain
import SigilloPostgres
import SigilloSQLite

/// `sigillo admin migrate-store --to postgres://…`: copies an installation's SQLite database into an empty PostgreSQL
/// one, then checks the copy (row counts, an intact audit chain with the same head).
///
/// Run it with the server stopped. Sealed seeds, digests and the seed key's check are copied as they are: the nodes
/// that use the PostgreSQL database must use the same token.
public enum StoreMigration {
    public struct Report: Sendable {
        /// Rows copied per table.
        public let copied: [String: Int]
        /// The audit chain's last record on the new database.
        public let auditHead: AuditRecord?
    }

    public static func copy(sqlite path: String, to settings: PostgresSettings, logger: Logger) async throws -> Report {
        guard FileManager.default.fileExists(atPath: path) else { throw ConfigurationError("no SQLite database at \(path)") }
        // Without the vault: nothing is opened or sealed, rows are copied as stored (migrations bring the file up to date first).
        let source = try SQLiteStore(path: path, vault: nil)
        let snapshot = try await source.snapshot()
        guard AuditChain.firstBrokenRecord(try await source.auditRecords()) == nil else {
            throw ConfigurationError("the audit chain of \(path) is broken: run `sigillo admin audit verify` and resolve that first")
        }
        let target = try await PostgresStore(settings: settings, vault: nil, logger: logger)
        defer { target.close() }
        let copied: [String: Int]
        do {
            copied = try await target.importSnapshot(snapshot)
        } catch let error as SigilloError {
            throw ConfigurationError(error.message)
        }
        let records = try await target.auditRecords()
        guard AuditChain.firstBrokenRecord(records) == nil, records.last?.hash == (try await source.auditHead())?.hash,
              try await target.auditSequenceHighWater() ?? 0 >= records.last?.sequence ?? 0 else {
            throw ConfigurationError("the copied audit chain does not verify: the PostgreSQL database was rolled back? check it before use")
        }
        return Report(copied: copied, auditHead: records.last)
    }
}
