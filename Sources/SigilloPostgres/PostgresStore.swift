import Foundation
import Logging
import NIOSSL
import PostgresNIO
import SigilloDomain
import Synchronization

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
/// Schema versions are in `PostgresStore+Schema.swift`; rows to models in `PostgresStore+Rows.swift`; one extension
/// per store protocol. Times are integer seconds or milliseconds, as in the SQLite store, so an installation copies
/// over unchanged (`PostgresStore.importTable`).
///
/// Unreachable database: once a call found it gone, a call that cannot get a connection within `connectionWait` fails with
/// `SigilloError(.databaseUnavailable)` (HTTP 503) instead of queueing; the pool keeps trying in the background and the
/// next call after the database is back succeeds, without a restart.
public final class PostgresStore: Sendable {
    let client: PostgresClient
    let logger: Logger
    /// How long a call waits for a connection before answering `databaseUnavailable`.
    let connectionWait: Duration
    let settings: PostgresSettings
    /// How long a call waits for a connection while the database answers (the pool is busy, not the database gone).
    let busyWait: Duration = .seconds(60)
    /// Whether the last call reached the database.
    private let reachable = LeaseFlag(true)
    private let runner: Task<Void, Never>
    private let vault: SeedVault?
    let auditBatcher: AuditBatcher

    /// Connects to `settings`' database, migrates it to the current schema and checks the vault's key against it.
    ///
    /// - Throws: `SigilloError(.databaseUnavailable)` when the server cannot be reached, `.internalError` when the
    ///   database was sealed with another token's seed key or is newer than this binary.
    public init(settings: PostgresSettings, vault: SeedVault?, logger: Logger) async throws {
        var configuration: PostgresClient.Configuration
        if let socket = settings.unixSocketPath {
            configuration = .init(unixSocketPath: socket, username: settings.username, password: settings.password, database: settings.database)
        } else {
            let tls: PostgresClient.Configuration.TLS
            switch settings.tlsMode {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(settings.tlsConfiguration)
            case .require: tls = .require(settings.tlsConfiguration)
            }
            configuration = .init(host: settings.host, port: settings.port, username: settings.username, password: settings.password,
                                  database: settings.database, tls: tls)
        }
        configuration.options.maximumConnections = settings.maximumConnections
        configuration.options.minimumConnections = min(2, settings.maximumConnections - 1)
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(15))
        try await Self.probe(settings, logger: logger)
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

    /// One connection made and closed before the pool starts, so that a wrong password, a missing database or an
    /// unreachable server is said at start in those words (the pool itself only keeps retrying).
    static func probe(_ settings: PostgresSettings, logger: Logger) async throws {
        let configuration: PostgresConnection.Configuration
        if let socket = settings.unixSocketPath {
            configuration = .init(unixSocketPath: socket, username: settings.username, password: settings.password, database: settings.database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            switch settings.tlsMode {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try .init(configuration: settings.tlsConfiguration))
            case .require: tls = .require(try .init(configuration: settings.tlsConfiguration))
            }
            configuration = .init(host: settings.host, port: settings.port, username: settings.username, password: settings.password,
                                  database: settings.database, tls: tls)
        }
        do {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: Self.quiet)
            try await connection.close()
        } catch let error as PSQLError {
            let state = error.serverInfo?[.sqlState] ?? ""
            let message = error.serverInfo?[.message] ?? "\(error.code)"
            switch state {
            case "28P01", "28000":
                throw SigilloError(.internalError, "PostgreSQL refused user \(settings.username) at \(settings.redacted): \(message)")
            case "3D000":
                throw SigilloError(.internalError, "PostgreSQL has no database \(settings.database) at \(settings.redacted): create it first")
            case "":
                throw SigilloError(.databaseUnavailable, "PostgreSQL at \(settings.redacted) cannot be reached: \(error.code)")
            default:
                throw SigilloError(.databaseUnavailable, "PostgreSQL at \(settings.redacted) refused the connection: \(message)")
            }
        } catch {
            throw SigilloError(.databaseUnavailable, "PostgreSQL at \(settings.redacted) cannot be reached: \(error)")
        }
    }

    /// Whether a server answers at `settings`' address: a connection made, or refused by the server itself (too many
    /// clients, a wrong password: reachable, not an outage).
    static func answers(_ settings: PostgresSettings) async -> Bool {
        do {
            try await self.probe(settings, logger: self.quiet)
            return true
        } catch let error as SigilloError {
            return error.code != .databaseUnavailable || error.message.contains("refused the connection")
        } catch {
            return false
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

    /// Whether the database at `settings` already holds a seed key check (the seed key must then come from the token).
    public static func isSealed(settings: PostgresSettings, logger: Logger) async throws -> Bool {
        let store = try await PostgresStore(settings: settings, vault: nil, logger: logger)
        defer { store.close() }
        return try await !store.rows("SELECT 1 FROM seed_vault").isEmpty
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

    /// Leases a connection for `body`, waiting at most `connectionWait` for one; maps PostgreSQL's errors to the
    /// domain's (`conflict` for a unique violation, `databaseUnavailable` for a lost or unreachable server).
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        do {
            let value = try await self.leasing(body)
            self.reachable.value.store(true, ordering: .relaxed)
            return value
        } catch {
            let mapped: any Error
            switch error {
            case let error as PSQLError: mapped = Self.domainError(error)
            case let error as SigilloError: mapped = error
            case is CancellationError: mapped = error
            default: mapped = SigilloError(.databaseUnavailable, "the database cannot be reached now; try again shortly")
            }
            if (mapped as? SigilloError)?.code == .databaseUnavailable {
                self.reachable.value.store(false, ordering: .relaxed)
            }
            throw mapped
        }
    }

    /// `body` on a leased connection. While the database answers, a call waits for a connection as long as the pool
    /// needs (up to `busyWait`: a burst of requests queues, it is not an outage); once a call found it unreachable, calls
    /// that get no connection within `connectionWait` fail. The caller is answered as soon as that is decided, whatever
    /// the pool does with the lease it asked for (a lease granted later runs nothing and is handed back at once).
    /// Once `body` has its connection it runs to its end, in a task of its own: a statement sent is never abandoned half
    /// way, neither by this timer nor by the caller's cancellation (a request whose client went away), so a connection
    /// never goes back to the pool inside a transaction.
    private func leasing<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let race = LeaseRace<T>()
        let (wait, busyWait, reachable, settings) = (self.connectionWait, self.busyWait, self.reachable, self.settings)
        return try await withCheckedThrowingContinuation { continuation in
            race.start(continuation)
            let work = Task {
                do {
                    let value = try await self.client.withConnection { connection -> T? in
                        guard race.claimLease() else { return nil }
                        return try await body(connection)
                    }
                    if let value { race.finish(.success(value)) }
                } catch {
                    race.finish(.failure(error))
                }
            }
            race.timer = Task {
                var start = ContinuousClock.now
                // Nothing to decide before `wait`; then looked at in steps (another call may find the database gone).
                try? await Task.sleep(for: wait)
                while !race.answered, !Task.isCancelled {
                    let waited = ContinuousClock.now - start
                    if waited >= wait, reachable.value.load(ordering: .relaxed) {
                        // Waited long: a busy pool or a slow statement, or a database gone while no other call noticed?
                        // One new connection tells; asked again every `wait` while this call goes on.
                        if await !Self.answers(settings) {
                            reachable.value.store(false, ordering: .relaxed)
                        } else if !race.waiting {
                            start = ContinuousClock.now
                        }
                    }
                    let unreachable = waited >= wait && !reachable.value.load(ordering: .relaxed)
                    if race.waiting, waited >= busyWait || unreachable {
                        if race.abandon() { work.cancel() }
                        return
                    }
                    if !race.waiting, unreachable {
                        // A statement sent to a database that is gone: the caller is answered now; the statement ends (or
                        // fails) on its own, its outcome unknown to the caller, as with any lost connection.
                        race.abandon(leased: true)
                        return
                    }
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }        }
    }

    /// A PostgreSQL error as the domain's.
    static func domainError(_ error: PSQLError) -> SigilloError {
        if error.code == .server, let state = error.serverInfo?[.sqlState] {
            if state == "23505" {
                // unique_violation: the constraint's name tells the field (`holders_email_key`, `holders_open_mobile`, …).
                let constraint = error.serverInfo?[.constraintName] ?? ""
                let field = ["email", "mobile", "fiscal_code", "username", "serial", "token_key_id", "pkey"].first { constraint.contains($0) } ?? "record"
                let name = field == "pkey" ? "id" : field.replacingOccurrences(of: "_", with: " ")
                return SigilloError(.conflict, "\(name) already belongs to another record")
            }
            // Admin shutdown, crash recovery, cannot connect now, too many connections, read-only standby.
            if state.hasPrefix("57P") || state.hasPrefix("08") || state == "53300" || state == "25006" {
                return SigilloError(.databaseUnavailable, "the database cannot be reached now; try again shortly")
            }
            return SigilloError(.internalError, "database error \(state)")
        }
        return SigilloError(.databaseUnavailable, "the database cannot be reached now; try again shortly")
    }
}

/// One call's lease: answered once, by the body's result or by giving up before a connection came.
private final class LeaseRace<T: Sendable>: Sendable {
    private enum State {
        case idle
        /// Waiting for a connection.
        case waiting(CheckedContinuation<T, any Error>)
        /// The body runs on its connection.
        case leased(CheckedContinuation<T, any Error>)
        /// Answered.
        case done
    }

    private let state = Mutex<State>(.idle)
    private let timerTask = Mutex<Task<Void, Never>?>(nil)

    /// The task that gives up on the lease; cancelled once the caller is answered.
    var timer: Task<Void, Never>? {
        get { self.timerTask.withLock { $0 } }
        set { self.timerTask.withLock { $0 = newValue } }
    }

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        self.state.withLock { $0 = .waiting(continuation) }
    }

    /// Whether no connection came yet and the caller is not answered.
    var waiting: Bool {
        self.state.withLock { if case .waiting = $0 { return true } else { return false } }
    }

    /// The connection came: true if the body may run (the caller was not answered meanwhile).
    func claimLease() -> Bool {
        self.state.withLock { state in
            guard case .waiting(let continuation) = state else { return false }
            state = .leased(continuation)
            return true
        }
    }

    /// Answers the caller with the body's result, or the lease's failure if it failed before a connection came.
    func finish(_ result: Result<T, any Error>) {
        let continuation: CheckedContinuation<T, any Error>? = self.state.withLock { state in
            switch state {
            case .waiting(let continuation), .leased(let continuation):
                state = .done
                return continuation
            case .idle, .done:
                return nil
            }
        }
        self.timer?.cancel()
        continuation?.resume(with: result.mapError { error in
            // A lease that failed before a connection came: the database is out of reach.
            if case .failure = result, error is CancellationError { return SigilloError(.databaseUnavailable, "the database cannot be reached now; try again shortly") }
            return error
        })
    }

    /// Whether the caller was answered.
    var answered: Bool {
        self.state.withLock { if case .done = $0 { return true } else { return false } }
    }

    /// Gives up on the call: true if the caller was answered now. Without `leased`, only while no connection came (no
    /// body ran or will run); with it, also while the body runs on a connection to a database found gone.
    @discardableResult
    func abandon(leased: Bool = false) -> Bool {
        let continuation: CheckedContinuation<T, any Error>? = self.state.withLock { state in
            switch state {
            case .waiting(let continuation):
                state = .done
                return continuation
            case .leased(let continuation) where leased:
                state = .done
                return continuation
            default:
                return nil
            }
        }
        continuation?.resume(throwing: SigilloError(.databaseUnavailable, "the database cannot be reached now; try again shortly"))
        return continuation != nil
    }
}

/// A flag shared between tasks.
private final class LeaseFlag: Sendable {
    let value: Atomic<Bool>

    init(_ value: Bool = false) {
        self.value = Atomic(value)
    }
}

/// Where the PostgreSQL database is: parsed from `postgres://user@host:port/database?sslmode=…` (the configuration's
/// `database`), the password from a file or an environment variable, never from the URL's text in logs.
public struct PostgresSettings: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 5432
    /// A folder holding PostgreSQL's socket (`host=/path` in the URL's query), instead of TCP.
    public var unixSocketPath: String?
    public var username = "sigillo"
    public var password: String?
    public var database = "sigillo"
    /// TLS to the database: `sslmode=disable` (default on loopback), `prefer` or `require` (verifying the server
    /// against the system's roots, or `sslrootcert=FILE`).
    public var tlsMode: TLSMode = .disable
    /// The CA the server's certificate must chain to (`sslrootcert=`); the system's roots otherwise.
    public var tlsRootCertificate: String?

    public enum TLSMode: String, Sendable {
        case disable, prefer, require
    }

    /// TLS to the server as `tlsMode` asks (`prefer`: TLS if the server offers it; `require`: TLS, server verified).
    var tlsConfiguration: TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let root = self.tlsRootCertificate { tls.trustRoots = .file(root) }
        return tls
    }
    public var maximumConnections = 20
    public var connectionWait: Duration = .seconds(3)

    public init() {}

    /// Whether `database` names a PostgreSQL database rather than an SQLite file.
    public static func isURL(_ database: String) -> Bool {
        database.hasPrefix("postgres://") || database.hasPrefix("postgresql://")
    }

    /// Parses `url`. The password comes from `passwordFile` (first line), else the environment variable
    /// `passwordEnvironment`, else the URL itself (accepted, but a file or variable keeps it out of configuration files).
    ///
    /// - Throws: `SigilloError(.invalidRequest)` naming what is wrong.
    public init(url: String, passwordFile: String? = nil, passwordEnvironment: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard Self.isURL(url), let components = URLComponents(string: url), let host = components.host else {
            throw SigilloError(.invalidRequest, "database: expected postgres://user@host:port/database, got something else")
        }
        self.init()
        if !host.isEmpty { self.host = host }
        if let port = components.port { self.port = port }
        if let user = components.user, !user.isEmpty { self.username = user.removingPercentEncoding ?? user }
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        if !path.isEmpty { self.database = path }
        var mode = "disable"
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode": mode = item.value ?? ""
            case "sslrootcert": self.tlsRootCertificate = item.value
            case "host": self.unixSocketPath = item.value.map { $0.hasSuffix(".s.PGSQL.\(self.port)") ? $0 : "\($0)/.s.PGSQL.\(self.port)" }
            case "pool": self.maximumConnections = try Self.positive(item.value, "pool")
            case "connect_wait": self.connectionWait = .seconds(try Self.positive(item.value, "connect_wait"))
            default: throw SigilloError(.invalidRequest, "database: unknown URL parameter \(item.name)")
            }
        }
        switch mode {
        case "disable": self.tlsMode = .disable
        case "prefer": self.tlsMode = .prefer
        case "require", "verify-full": self.tlsMode = .require
        default: throw SigilloError(.invalidRequest, "database: sslmode must be disable, prefer, require or verify-full")
        }
        if let passwordFile {
            guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw SigilloError(.invalidRequest, "database password file \(passwordFile) cannot be read")
            }
            self.password = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        } else if let passwordEnvironment {
            guard let value = environment[passwordEnvironment] else {
                throw SigilloError(.invalidRequest, "database password variable \(passwordEnvironment) is not set")
            }
            self.password = value
        }
    }

    private static func positive(_ value: String?, _ name: String) throws -> Int {
        guard let value, let number = Int(value), number > 0 else { throw SigilloError(.invalidRequest, "database: \(name) must be a positive number") }
        return number
    }

    /// The URL without its password, for logs and messages.
    public var redacted: String {
        "postgres://\(self.username)@\(self.unixSocketPath ?? "\(self.host):\(self.port)")/\(self.database)"
    }
}
