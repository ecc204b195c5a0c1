import Foundation
import Logging
import PostgresNIO
import SigilloDomain

/// The store on PostgreSQL, for several nodes on one database: every store protocol with the guarantees the SQLite
/// store gives on one node, made to hold across nodes.
///
/// - Compare-and-set is one conditional statement (`UPDATE … WHERE … RETURNING`): SAD consumption, attempt reservation
///   (an upsert), OTP steps and counters, state changes. PostgreSQL re-checks the `WHERE` of a row another transaction
///   changed meanwhile, so two nodes racing cannot both pass.
/// - Reads that decide a write lock their row first (`SELECT … FOR UPDATE`): SMS codes, mobile changes, renewals.
///   Throttles take a transaction-scoped advisory lock on their key; the audit chain's head is one row
///   (`audit_state`) that every append locks, which also keeps the highest sequence ever handed out.
/// - Several rows that change together change in one transaction (`transaction`), rolled back whole on any error.
/// - Audit appends from concurrent requests share one transaction (`AuditBatcher`): the chain's lock is taken once
///   per batch instead of once per event.
///
/// Schema versions are in `PostgresStore+Schema.swift`; connections, their bounded waits and the error mapping in
/// `PostgresStore+Connections.swift`; rows to models in `PostgresStore+Rows.swift`; one extension
/// per store protocol. Times are integer seconds or milliseconds, as in the SQLite store, so an installation copies
/// over unchanged (`PostgresStore.importTable`).
///
/// Unreachable database: once a call found it gone, a call that cannot get a connection within `connectionWait` fails with
/// `SigilloError(.databaseUnavailable)` (HTTP 503) instead of queueing; the pool keeps trying in the background and the
/// next call after the database is back succeeds, without a restart.
public final class PostgresStore: PoolWaitsReporting {
    let client: PostgresClient
    let logger: Logger
    /// How long a call waits for a connection before answering `databaseUnavailable`.
    let connectionWait: Duration
    let settings: PostgresSettings
    /// How long a call waits for a connection while the database answers (the pool is busy, not the database gone).
    let busyWait: Duration = .seconds(60)
    /// Whether the last call reached the database.
    let reachable = LeaseFlag(true)
    /// Time calls spent waiting for a pooled connection (metrics).
    public let poolWaits = PoolWaits()
    private let runner: Task<Void, Never>
    private let vault: SeedVault?
    let auditBatcher: AuditBatcher

    /// Connects to `settings`' database, migrates it to the current schema and checks the vault's key against it.
    ///
    /// - Throws: `SigilloError(.databaseUnavailable)` when the server cannot be reached, `.internalError` when the
    ///   database was sealed with another token's seed key or is newer than this binary.
    public init(settings: PostgresSettings, vault: SeedVault?, logger: Logger) async throws {
        var configuration = settings.clientConfiguration
        configuration.options.maximumConnections = settings.maximumConnections
        configuration.options.minimumConnections = min(2, settings.maximumConnections - 1)
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(15))
        try await Self.probe(settings)
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.logger = logger
        self.connectionWait = settings.connectionWait
        self.settings = settings
        self.vault = vault
        self.runner = Task { await client.run() }
        self.auditBatcher = AuditBatcher()
        do {
            try await self.migrate()
            try await self.checkVault()
        } catch {
            self.runner.cancel()
            throw error
        }
    }

    deinit {
        self.runner.cancel()
    }

    /// Closes the pool's connections (the store is unusable afterwards).
    public func close() {
        self.runner.cancel()
    }

    /// Whether the database answers now (readiness).
    public func ping() async -> Bool {
        (try? await self.rows("SELECT 1")) != nil
    }

    // MARK: Seed vault

    private func checkVault() async throws {
        guard let vault else { return }
        try await self.transaction { connection in
            let check: Data? = try await Self.first(connection, "SELECT key_check FROM seed_vault WHERE id = 1 FOR UPDATE").map { try $0.data("key_check") }
            if let check {
                guard check == Data(vault.keyCheck) else {
                    throw SigilloError(.internalError, "the token's seed key is not the one this database was sealed with: wrong token or database")
                }
            } else {
                try await Self.execute(connection, "INSERT INTO seed_vault (id, key_check) VALUES (1, \(Data(vault.keyCheck))) ON CONFLICT (id) DO NOTHING")
            }
            try await self.sealClearMailBodies(connection)
        }
    }

    /// Whether the database at `settings` already holds a seed key check (the seed key must then come from the token):
    /// asked on one connection, before the store (and its migrations) starts.
    public static func isSealed(settings: PostgresSettings, logger: Logger) async throws -> Bool {
        try await self.withProbeConnection(settings) { connection in
            let present = try await Self.first(connection, "SELECT to_regclass('seed_vault') IS NOT NULL AS present")
            guard try present?["present"].decode(Bool.self) == true else { return false }
            return try await Self.first(connection, "SELECT 1 FROM seed_vault LIMIT 1") != nil
        }
    }

    var sealsSecrets: Bool { self.vault != nil }

    private var requiredVault: SeedVault {
        get throws {
            guard let vault = self.vault else { throw SigilloError(.internalError, "this store was opened without the seed vault") }
            return vault
        }
    }

    func seal(_ secret: [UInt8], _ context: String) throws -> Data {
        try self.requiredVault.seal(secret, context: context)
    }

    func open(_ sealed: Data?, _ context: String) throws -> [UInt8] {
        try self.requiredVault.open(sealed ?? Data(), context: context)
    }

    func keyedDigest(_ digest: [UInt8], _ context: String) throws -> Data {
        Data(try self.requiredVault.digest(digest, context: context))
    }

    // MARK: Running statements

    /// Every row of one statement, outside any transaction (autocommit: one statement is atomic by itself).
    func rows(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        try await self.withConnection { connection in try await Self.rows(connection, query) }
    }

    /// The first row of one statement, if any.
    func first(_ query: PostgresQuery) async throws -> PostgresRandomAccessRow? {
        try await self.rows(query).first
    }

    /// Runs one statement for its effect.
    func execute(_ query: PostgresQuery) async throws {
        _ = try await self.rows(query)
    }

    static func rows(_ connection: PostgresConnection, _ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        try await connection.query(query, logger: Self.quiet).collect().map { $0.makeRandomAccess() }
    }

    static func first(_ connection: PostgresConnection, _ query: PostgresQuery) async throws -> PostgresRandomAccessRow? {
        try await self.rows(connection, query).first
    }

    static func execute(_ connection: PostgresConnection, _ query: PostgresQuery) async throws {
        _ = try await self.rows(connection, query)
    }

    /// Statements are not logged (their bound values may be digests of secrets).
    static let quiet = Logger(label: "sigillo.postgres.quiet", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Runs `body` in one transaction (READ COMMITTED, PostgreSQL's default): committed if it returns, rolled back if
    /// it throws, and its own error rethrown (constraint violations as `conflict`).
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await self.withConnection { connection in
            try await Self.execute(connection, "BEGIN")
            do {
                let value = try await body(connection)
                try await Self.execute(connection, "COMMIT")
                return value
            } catch {
                // A broken connection cannot roll back; the server discards its open transaction when it goes.
                try? await Self.execute(connection, "ROLLBACK")
                throw error
            }
        }
    }
}
