import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import PostgresNIO
import SigilloPostgres

/// A real PostgreSQL server (Debian's `postgresql`, 15) that a test starts in a temporary folder: `initdb` and
/// `postgres` run as the unprivileged `postgres` user when the tests run as root (CI), as the current user otherwise.
/// It listens on a reserved 127.0.0.1 port, with password (SCRAM) authentication for the `sigillo` superuser.
///
/// A small shell watchdog owns the server and holds this process's pipe as its standard input: when the pipe closes
/// (`stop()`, or the test process ending in any way), it stops the server and, unless asked to keep it, removes the
/// folder. So no server outlives the tests.
///
/// `shared` is one server for the whole test process (each test makes its own database in it with `makeDatabase()`);
/// a test that stops or kills its server starts its own with `start()`.
public final class TestPostgres: @unchecked Sendable {
    public let port: Int
    public let password: String
    public let directory: URL
    private let lock = NSLock()
    private var watchdog: BackgroundProcess?

    /// The one server of this test process, started on first use.
    public static var shared: TestPostgres {
        get async throws { try await SharedServer.instance.value() }
    }

    private actor SharedServer {
        static let instance = SharedServer()
        private var server: Task<TestPostgres, any Error>?

        func value() async throws -> TestPostgres {
            if let server { return try await server.value }
            let task = Task { try await TestPostgres.start() }
            self.server = task
            return try await task.value
        }
    }

    private init(port: Int, password: String, directory: URL) {
        self.port = port
        self.password = password
        self.directory = directory
    }

    /// Where Debian installs the server's programs (the newest version there).
    public static let binaries: String? = {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root))?.compactMap(Int.init).sorted() ?? []
        return versions.last.map { "\(root)/\($0)/bin" }
    }()

    static var asRoot: Bool { getuid() == 0 }

    /// A new server in a new folder (`initdb`), started and accepting connections.
    public static func start() async throws -> TestPostgres {
        guard let binaries else { throw BackgroundProcessError(description: "PostgreSQL is not installed (make test installs Debian's postgresql)") }
        let directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("sigillo-pg-\(UUID().uuidString.prefix(12))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        let password = UUID().uuidString
        try Data(password.utf8).write(to: directory.appendingPathComponent("pwfile"))
        if self.asRoot {
            let owned = try run("/bin/chown", ["-R", "postgres:postgres", directory.path])
            guard owned.status == 0 else { throw BackgroundProcessError(description: "chown postgres failed: \(owned.output)") }
        }
        let initdb = try await runOffPool("/bin/sh", ["-c", Self.command(
            "\(binaries)/initdb -D \(directory.path)/data -U sigillo --auth=scram-sha-256 --pwfile=\(directory.path)/pwfile -E UTF8 --no-sync --no-instructions")])
        guard initdb.status == 0 else { throw BackgroundProcessError(description: "initdb failed: \(initdb.output)") }
        let ports = try ReservedPorts(count: 1)
        let server = TestPostgres(port: ports.base, password: password, directory: directory)
        ports.release()
        try await server.launch()
        return server
    }

    /// `command` as the user the server runs as.
    static func command(_ command: String) -> String {
        // setpriv executes the command itself (no process in between that would handle signals its own way).
        self.asRoot ? "exec setpriv --reuid=postgres --regid=postgres --init-groups -- sh -c 'exec \(command)'" : "exec \(command)"
    }

    /// Starts the server on its folder (again, after `stop(keepFolder: true)` or `kill()`), and waits until it accepts
    /// connections (or fails, with its log).
    public func launch() async throws {
        guard let binaries = Self.binaries else { throw BackgroundProcessError(description: "PostgreSQL is not installed") }
        let data = self.directory.appendingPathComponent("data").path
        let log = self.directory.appendingPathComponent("server.log").path
        // fsync off: the tests kill processes, never the machine, so the operating system keeps every write. Every test's
        // store has a pool of its own and the suites run in parallel: room for many connections.
        let server = """
            \(binaries)/postgres -D \(data) -p \(self.port) -k \(self.directory.path) -c listen_addresses=127.0.0.1 -c max_connections=1000 \
            -c fsync=off -c full_page_writes=off -c shared_buffers=64MB >>\(log) 2>&1
            """
        let ready = "\(binaries)/pg_isready -q -h \(self.directory.path) -p \(self.port)"
        let script = """
            (exec setsid \(Self.command(server).replacingOccurrences(of: "exec ", with: "", options: .anchored))) &
            pid=$!
            trap 'kill -INT $pid 2>/dev/null; wait $pid; rm -rf \(self.directory.path); exit 0' TERM
            until \(ready); do kill -0 $pid 2>/dev/null || { echo failed; exit 1; }; sleep 0.05; done
            echo ready
            read line
            if [ "$line" = keep ]; then kill -INT $pid; wait $pid; exit 0; fi
            kill -INT $pid 2>/dev/null; wait $pid
            rm -rf \(self.directory.path)
            """
        let watchdog = try await BackgroundProcess.start("/bin/sh", ["-c", script])
        guard watchdog.firstLine == "ready" else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw BackgroundProcessError(description: "postgres did not start: \(text.suffix(2000))")
        }
        self.lock.withLock { self.watchdog = watchdog }
    }

    /// Stops the server (a fast shutdown) and waits until it is gone; with `keepFolder`, it can be `launch()`ed again.
    public func stop(keepFolder: Bool = false) async {
        guard let watchdog = self.lock.withLock({ () -> BackgroundProcess? in defer { self.watchdog = nil }; return self.watchdog }) else { return }
        if keepFolder { watchdog.send("keep\n") }
        await watchdog.finish()
    }

    /// The server as a node sees it when the database machine vanishes: every server process killed at once
    /// (`SIGKILL`), the folder kept; `launch()` brings it back (PostgreSQL recovers from its log).
    public func kill() async throws {
        let pidFile = self.directory.appendingPathComponent("data/postmaster.pid").path
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text.split(separator: "\n").first ?? "") else {
            throw BackgroundProcessError(description: "postgres is not running")
        }
        // The postmaster leads its own process group (setsid), its children are in it: one kill takes them all at
        // once, so the postmaster never sees a child die and starts a crash restart.
        _ = Glibc.kill(-pid, SIGKILL)
        await self.stop(keepFolder: true)
        try? FileManager.default.removeItem(atPath: pidFile)
    }

    /// A new empty database on this server, and the settings a store connects with (its password given directly).
    public func makeDatabase(maximumConnections: Int = 8) async throws -> PostgresSettings {
        let name = "t_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        try await self.execute("CREATE DATABASE \(name)")
        return self.settings(database: name, maximumConnections: maximumConnections)
    }

    /// Settings for `database` on this server.
    public func settings(database: String, maximumConnections: Int = 8) -> PostgresSettings {
        var settings = PostgresSettings()
        settings.host = "127.0.0.1"
        settings.port = self.port
        settings.username = "sigillo"
        settings.password = self.password
        settings.database = database
        settings.maximumConnections = maximumConnections
        return settings
    }

    /// The URL of `database` (no password: give it by file or variable).
    public func url(database: String) -> String {
        "postgres://sigillo@127.0.0.1:\(self.port)/\(database)"
    }

    /// Runs one statement on the `postgres` database as the superuser.
    public func execute(_ sql: String, database: String = "postgres") async throws {
        let configuration = PostgresConnection.Configuration(
            host: "127.0.0.1", port: self.port, username: "sigillo", password: self.password, database: database, tls: .disable)
        let logger = Logger(label: "test-postgres", factory: { _ in SwiftLogNoOpLogHandler() })
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}
