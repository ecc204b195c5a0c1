import SigilloDomain
import Foundation
import GRDB

/// The embedded store: SQLite through GRDB, versioned migrations (`SQLiteStore+Migrations.swift`), one extension per
/// store protocol (`SQLiteStore+HolderStore.swift`, …), rows to models in `SQLiteStore+Rows.swift`.
///
/// In production the database is a file opened as a WAL `DatabasePool` (`init(path:vault:)`); tests may hand any
/// `DatabaseWriter`, such as an in-memory `DatabaseQueue` (`init(writer:vault:)`). GRDB runs every access on its own
/// dispatch queues (never on the cooperative pool), serialises writes and wraps each `write` in a transaction.
public final class SQLiteStore: PoolWaitsReporting {
    let database: any DatabaseWriter
    /// The hot path's writes (SAD consumption, audit) share transactions under load.
    let groupCommit: GroupCommit
    /// Time writes spent waiting for the single writer (metrics).
    public let poolWaits = PoolWaits()
    /// Seals the OTP seeds and waiting mail bodies; nil for a store that only queues mail or reads the audit log (no
    /// seed is read or written, and a mail it queues waits in clear until a store with the vault opens the database).
    private let vault: SeedVault?

    /// The configuration every connection gets: foreign keys enforced, deleted data zeroed, a 10 s busy timeout.
    /// `init(path:vault:)` opens its pool with it; give it to a `DatabaseQueue` for a store in memory.
    public static func makeConfiguration() -> Configuration {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // What is deleted or overwritten (a seed in clear, spent SADs and tokens) is zeroed in the file, not left in free space.
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        configuration.busyMode = .timeout(10)
        return configuration
    }

    /// Opens (creating if needed) the database at `path` and migrates it to the current schema.
    ///
    /// With a `vault`, the first opening records its key check and later ones refuse another key (the database was
    /// sealed with another token's seed key). Without one, seeds can be neither stored nor read.
    ///
    /// The files are the server user's alone (`DatabaseFiles`): the folder 0700, the database, `-wal` and `-shm` 0600.
    /// - Parameter warning: told when an existing folder that others could read was made private.
    /// - Throws: `SigilloError` when the folder can be written by others, or the files cannot be made private.
    public convenience init(path: String, vault: SeedVault?, warning: (String) -> Void = { _ in }) throws {
        try DatabaseFiles.prepare(path: path, warning: warning)
        try self.init(writer: try DatabasePool(path: path, configuration: SQLiteStore.makeConfiguration()), vault: vault)
        // SQLite made the -wal and -shm files with the database's mode: checked again now that they exist.
        try DatabaseFiles.restrict(path: path)
    }

    /// Migrates the database of `writer` to the current schema and uses it (a `DatabasePool` on a file, or a
    /// `DatabaseQueue`, e.g. in memory for tests). The vault's key check is recorded or verified as in `init(path:vault:)`.
    public init(writer: any DatabaseWriter, vault: SeedVault?) throws {
        self.database = writer
        self.groupCommit = GroupCommit(database: writer, waits: self.poolWaits)
        self.vault = vault
        let report = MigrationReport()
        try Self.refuseNewerSchema(self.database)
        try Self.migrator(vault: vault, report: report).migrate(self.database)
        var rewritten = report.sealedInPlace.withLock { $0 }
        if let vault {
            rewritten = try self.database.write { db in
                if let check = try Data.fetchOne(db, sql: "SELECT key_check FROM seed_vault WHERE id = 1") {
                    guard check == Data(vault.keyCheck) else {
                        throw SigilloError(.internalError, "the token's seed key is not the one this database was sealed with: wrong token or database")
                    }
                } else {
                    try db.execute(sql: "INSERT INTO seed_vault (id, key_check) VALUES (1, ?)", arguments: [Data(vault.keyCheck)])
                }
                return try self.sealClearMailBodies(db)
            } || rewritten
        }
        if rewritten, let pool = self.database as? DatabasePool {
            // What was in clear leaves the write-ahead log too (a queue has no write-ahead log).
            _ = try pool.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        }
    }

    /// Whether the database at `path` already holds a seed key check: its seed key must then come from the token, not be
    /// made anew in whichever token the server was pointed at. False when there is no database yet.
    public static func isSealed(path: String) throws -> Bool {
        guard FileManager.default.fileExists(atPath: path) else { return false }
        return try DatabaseQueue(path: path).read { db in
            try db.tableExists("seed_vault") && (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM seed_vault") ?? 0) > 0
        }
    }

    /// Whether this store seals what it keeps (it was opened with the vault).
    var sealsSecrets: Bool { self.vault != nil }

    /// The vault, for sealing and opening seeds (see `SeedVault`).
    private var requiredVault: SeedVault {
        get throws {
            guard let vault = self.vault else { throw SigilloError(.internalError, "this store was opened without the seed vault") }
            return vault
        }
    }

    /// Seals a seed for the record named by `context`.
    func seal(_ secret: [UInt8], _ context: String) throws -> Data {
        try self.requiredVault.seal(secret, context: context)
    }

    func open(_ sealed: Data?, _ context: String) throws -> [UInt8] {
        try self.requiredVault.open(sealed ?? Data(), context: context)
    }

    /// What to keep of a short code's digest for the record named by `context` (`SeedVault.digest`): keyed by the
    /// token, so the database alone cannot be searched for the code.
    func keyedDigest(_ digest: [UInt8], _ context: String) throws -> Data {
        Data(try self.requiredVault.digest(digest, context: context))
    }

    /// Runs `body` in a write transaction, turning constraint violations into clear `conflict` errors.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            let wait = self.poolWaits.begin()
            defer { wait.abandoned() }
            return try await self.database.write { db in
                wait.acquired()
                return try body(db)
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE || error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY {
            let message = error.message ?? ""
            let field = ["email", "mobile", "fiscal_code", "username", "serial", "token_key_id", "id"].first { message.contains(".\($0)") } ?? "record"
            throw SigilloError(.conflict, "\(field.replacingOccurrences(of: "_", with: " ")) already belongs to another record")
        }
    }
}
