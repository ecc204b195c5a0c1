import Foundation
import GRDB
import SigilloDomain
#if canImport(Glibc)
import Glibc
#endif

/// Schema versions and the online backup (`sigillo admin backup`, `sigillo doctor`).
///
/// A migration's identifier starts with its version, `vN: …`; a database's version is the highest one it has applied.
extension SQLiteStore {
    /// The newest schema version this binary knows (its last migration's `vN`).
    public static var schemaVersion: Int {
        self.migrator(vault: nil, report: MigrationReport()).migrations.compactMap(Self.version(of:)).max() ?? 0
    }

    /// `N` of a migration identifier `vN: …`; nil for anything else.
    static func version(of identifier: String) -> Int? {
        guard identifier.hasPrefix("v"), let colon = identifier.firstIndex(of: ":") else { return nil }
        return Int(identifier[identifier.index(after: identifier.startIndex)..<colon])
    }

    /// The schema version of the database `db`: its highest applied `vN`, 0 for an empty database. A migration this
    /// binary does not know and whose identifier has no version counts as newer than any it knows.
    static func databaseSchemaVersion(_ db: Database) throws -> Int {
        let migrator = self.migrator(vault: nil, report: MigrationReport())
        let applied = try migrator.appliedIdentifiers(db)
        let known = Set(migrator.migrations)
        return applied.map { Self.version(of: $0) ?? (known.contains($0) ? 0 : Int.max) }.max() ?? 0
    }

    /// Refuses a database migrated by a newer binary, before any migration runs: it would be written with an older
    /// idea of its tables.
    ///
    /// - Throws: `SigilloError` `internalError` naming both versions.
    static func refuseNewerSchema(_ writer: any DatabaseWriter) throws {
        let found = try writer.read { try Self.databaseSchemaVersion($0) }
        guard found <= Self.schemaVersion else {
            let shown = found == Int.max ? "unknown to it" : String(found)
            throw SigilloError(.internalError, "the database has schema version \(shown), newer than this binary's \(Self.schemaVersion): upgrade sigillo first")
        }
    }

    /// The schema version of the database file at `path` (opened read-only, nothing migrated); nil when there is no file.
    public static func databaseSchemaVersion(path: String) throws -> Int? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try self.readOnly(path) { try Self.databaseSchemaVersion($0) }
    }

    /// The seed key check the database at `path` was sealed with (`SeedVault.keyCheck`); nil when it was never sealed.
    public static func sealedKeyCheck(path: String) throws -> [UInt8]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try self.readOnly(path) { db in
            guard try db.tableExists("seed_vault") else { return nil }
            return try Data.fetchOne(db, sql: "SELECT key_check FROM seed_vault WHERE id = 1").map { [UInt8]($0) }
        }
    }

    /// The time of the newest audit record of the database at `path`; nil when there is none.
    public static func newestAuditTime(path: String) throws -> Date? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try self.readOnly(path) { db in
            guard try db.tableExists("audit_events") else { return nil }
            guard let seconds = try Int64.fetchOne(db, sql: "SELECT MAX(time) FROM audit_events") else { return nil }
            return Date(timeIntervalSince1970: Double(seconds))
        }
    }

    private static func readOnly<T>(_ path: String, _ body: (Database) throws -> T) throws -> T {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        return try DatabaseQueue(path: path, configuration: configuration).read(body)
    }

    /// The database file this store has open; nil for a store in memory.
    public var path: String? { (self.database as? DatabasePool)?.path }

    /// Copies the database, as one consistent snapshot, into a new file at `destination` (mode 0600; refused if it
    /// exists), with SQLite's online backup: the copy is read in one read transaction of the write-ahead log, so the
    /// server keeps writing meanwhile and nothing written after the snapshot began is in it.
    ///
    /// - Returns: the schema version of the copy.
    /// - Throws: `SigilloError` when the file cannot be created, or SQLite's error.
    public func backup(to destination: String) async throws -> Int {
        let descriptor = Glibc.open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else {
            throw SigilloError(.internalError, "cannot create the backup file \(destination): \(String(cString: strerror(errno)))")
        }
        Glibc.close(descriptor)
        let source = self.database
        // GRDB blocks the calling thread for the whole copy: on a Dispatch thread, never on the cooperative pool.
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try Self.copy(source, to: destination) })
            }
        }
    }

    private static func copy(_ source: any DatabaseWriter, to destination: String) throws -> Int {
        do {
            let copy = try DatabaseQueue(path: destination)
            try source.backup(to: copy)
            // The copy keeps the database's journal mode (WAL): fold everything into the one file and close it.
            let version = try copy.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA journal_mode = DELETE")
                return try Self.databaseSchemaVersion(db)
            }
            try copy.close()
            return version
        } catch {
            for file in [destination, destination + "-wal", destination + "-shm", destination + "-journal"] { try? FileManager.default.removeItem(atPath: file) }
            throw error
        }
    }
}
