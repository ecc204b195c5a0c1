import Foundation
import SigilloPostgres
import SigilloServer
import SigilloSQLite
import SigilloTestSupport
import Testing
import X509

/// `sigillo doctor` on a healthy configuration (a token with its CA made by `sigillo ca init`, development certificates,
/// free ports), then with one thing broken at a time: the FAIL line that names it, and exit status 1.
@Suite("sigillo doctor")
struct DoctorTests {
    /// A configuration as `make run` leaves it, in a folder of the test's own, on a copy of a new token.
    struct Installation {
        let fixture: TestToken
        let folder: URL
        var environment: [String: String]
        let ports: ReservedPorts
        var certs: URL { self.folder.appendingPathComponent("certs") }

        init() async throws {
            self.fixture = try TestToken.unopened()
            self.folder = self.fixture.directory
            try LiveServer.makeCertificates(in: self.folder.appendingPathComponent("certs"))
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: self.fixture.pinFile)
            self.ports = try ReservedPorts(count: 3)
            var environment = AdminCLITests.serveEnvironment(try self.fixture.isolatedEnvironment(), folder: self.folder, module: TestHSM.modulePath,
                                                             token: self.fixture.label, pinFile: self.fixture.pinFile, sessions: 1)
            environment["SIGILLO_PORT"] = String(self.ports.base)
            environment["SIGILLO_ADMIN_PORT"] = String(self.ports.base + 1)
            environment["SIGILLO_PKI_PORT"] = String(self.ports.base + 2)
            environment["SIGILLO_PKI_URL"] = "http://127.0.0.1:\(self.ports.base + 2)"
            environment["SIGILLO_MAIL_FILE"] = self.folder.appendingPathComponent("var/mail.jsonl").path
            self.environment = environment
            let initialized = try await runOffPool(AdminCLITests.binary, ["ca", "init", "--algorithm", "ecdsa-p256"], environment: environment)
            try #require(initialized.status == 0, "\(initialized.output)")
            // Held until now so that no other test took them; doctor's bind test needs them free.
            self.ports.release()
        }

        /// Runs `sigillo doctor` with `changes` applied to the environment.
        func doctor(_ changes: [String: String] = [:]) async throws -> (status: Int32, output: String, lines: [Substring]) {
            let result = try await runOffPool(AdminCLITests.binary, ["doctor"], environment: self.environment.merging(changes) { $1 })
            return (result.status, result.output, result.output.split(separator: "\n"))
        }
    }

    static func failures(_ lines: [Substring]) -> [Substring] { lines.filter { $0.hasPrefix("FAIL") } }

    /// The line of the check `name`.
    static func line(_ lines: [Substring], _ name: String) -> Substring? {
        lines.first { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.map(String.init) == name }
    }

    @Test("a healthy configuration is all ok; then each of wrong PIN, missing or world-readable TLS key, readable PIN file, port taken, CA certificate of another key, database newer, open database folder is the FAIL it names")
    func healthyThenBroken() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: AdminCLITests.binary), "build the executable first: swift build")
        let installation = try await Installation()

        let healthy = try await installation.doctor()
        #expect(healthy.status == 0, "\(healthy.output)")
        #expect(Self.failures(healthy.lines).isEmpty, "\(healthy.output)")
        // Every check ok; only the NTP status may be unknown here (no systemd in a container).
        let warnings = healthy.lines.filter { $0.hasPrefix("WARNING") }
        #expect(warnings.allSatisfy { $0.contains(" ntp ") }, "\(healthy.output)")
        for name in ["configuration", "tls-certificate", "tls-key", "tls-pair", "admin-ca", "pin-file", "database-folder", "database", "pkcs11-module",
                     "token", "pin", "ca", "tsa", "seed-key", "kek", "clock"] {
            #expect(Self.line(healthy.lines, name)?.hasPrefix("ok") == true, "\(name): \(healthy.output)")
        }
        for name in ["public", "admin", "publication"] {
            #expect(healthy.lines.contains { $0.hasPrefix("ok") && $0.contains("port \(name)") }, "\(healthy.output)")
        }
        #expect(healthy.lines.last?.contains("no problem found") == true)
        // Nothing was made: no database, and the new installation's keys are still for serve to create.
        #expect(!FileManager.default.fileExists(atPath: installation.folder.appendingPathComponent("var/sigillo.sqlite").path))

        // A configuration file that cannot be read, or names a field no version knows: nothing else is checked.
        let absent = try await runOffPool(AdminCLITests.binary, ["doctor", "--config", installation.folder.appendingPathComponent("absent.json").path],
                                          environment: installation.environment)
        #expect(absent.status == 1 && absent.output.hasPrefix("FAIL") && absent.output.contains("cannot be read"), "\(absent.output)")
        let misspelt = installation.folder.appendingPathComponent("misspelt.json")
        try Data(#"{"tlsKeyy": "certs/server-key.pem"}"#.utf8).write(to: misspelt)
        let unknown = try await runOffPool(AdminCLITests.binary, ["doctor", "--config", misspelt.path], environment: installation.environment)
        #expect(unknown.status == 1 && unknown.output.contains("unknown configuration field 'tlsKeyy'"), "\(unknown.output)")

        // A TLS key that is missing, then one every user can read.
        let missing = try await installation.doctor(["SIGILLO_TLS_KEY": installation.certs.appendingPathComponent("absent-key.pem").path])
        #expect(missing.status == 1)
        #expect(Self.line(missing.lines, "tls-key").map { $0.hasPrefix("FAIL") && $0.contains("is missing") } == true, "\(missing.output)")
        let open = installation.certs.appendingPathComponent("open-key.pem")
        try FileManager.default.copyItem(at: installation.certs.appendingPathComponent("server-key.pem"), to: open)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: open.path)
        let readable = try await installation.doctor(["SIGILLO_TLS_KEY": open.path])
        #expect(readable.status == 1)
        #expect(Self.line(readable.lines, "tls-key").map { $0.hasPrefix("FAIL") && $0.contains("can be read by every user (mode 644)") && $0.contains("chmod 600") } == true,
                "\(readable.output)")
        #expect(Self.failures(readable.lines).count == 1, "\(readable.output)")

        // A PIN file others can read.
        let openPIN = installation.folder.appendingPathComponent("open.pin")
        try FileManager.default.copyItem(atPath: installation.fixture.pinFile, toPath: openPIN.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: openPIN.path)
        let pinFile = try await installation.doctor(["SIGILLO_PIN_FILE": openPIN.path])
        #expect(pinFile.status == 1)
        #expect(Self.line(pinFile.lines, "pin-file").map { $0.hasPrefix("FAIL") && $0.contains("can be read by every user") } == true, "\(pinFile.output)")

        // A port something else holds.
        let taken = try ReservedPorts(count: 1)
        let port = try await installation.doctor(["SIGILLO_ADMIN_PORT": String(taken.base)])
        taken.release()
        #expect(port.status == 1)
        #expect(port.lines.contains { $0.hasPrefix("FAIL") && $0.contains("port admin") && $0.contains("127.0.0.1:\(taken.base) cannot be bound") }, "\(port.output)")
        #expect(Self.failures(port.lines).count == 1, "\(port.output)")

        // A CA certificate whose key is not the token's.
        let otherCA = installation.folder.appendingPathComponent("other-ca.pem")
        let made = try await runOffPool("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=Another CA",
                                                    "-days", "30", "-keyout", installation.folder.appendingPathComponent("other-ca-key.pem").path, "-out", otherCA.path])
        try #require(made.status == 0, "\(made.output)")
        let wrongCA = try await installation.doctor(["SIGILLO_CA_CERTIFICATE": otherCA.path])
        #expect(wrongCA.status == 1)
        #expect(Self.line(wrongCA.lines, "ca").map { $0.hasPrefix("FAIL") && $0.contains("does not match key 'sigillo-ca' in the token") } == true, "\(wrongCA.output)")

        // A database folder others can write to, then a database newer than this binary.
        let shared = installation.folder.appendingPathComponent("shared")
        try FileManager.default.createDirectory(at: shared, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: shared.path)
        let folder = try await installation.doctor(["SIGILLO_DATABASE": shared.appendingPathComponent("sigillo.sqlite").path])
        #expect(folder.status == 1)
        #expect(Self.line(folder.lines, "database-folder").map { $0.hasPrefix("FAIL") && $0.contains("can be written by other users (mode 777)") } == true, "\(folder.output)")
        let database = installation.folder.appendingPathComponent("var/sigillo.sqlite").path
        try FileManager.default.createDirectory(atPath: installation.folder.appendingPathComponent("var").path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        _ = try SQLiteStore(path: database, vault: nil)
        let bumped = try run("sqlite3", [database, "INSERT INTO grdb_migrations (identifier) VALUES ('v\(SQLiteStore.schemaVersion + 1): from a newer sigillo')"])
        try #require(bumped.status == 0, "\(bumped.output)")
        let newer = try await installation.doctor()
        #expect(newer.status == 1)
        #expect(Self.line(newer.lines, "database").map {
            $0.hasPrefix("FAIL") && $0.contains("schema version \(SQLiteStore.schemaVersion + 1), newer than this binary's \(SQLiteStore.schemaVersion)")
        } == true, "\(newer.output)")
        try FileManager.default.removeItem(atPath: database)
        // An older one (as a previous release left it) is for serve to migrate: not a problem.
        let older = try run("sqlite3", [database, "CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY); INSERT INTO grdb_migrations VALUES ('v1: holders, credentials, OTP, SAD, audit')"])
        try #require(older.status == 0, "\(older.output)")
        let migrates = try await installation.doctor()
        #expect(Self.line(migrates.lines, "database").map { $0.hasPrefix("ok") && $0.contains("schema version 1: serve migrates it to \(SQLiteStore.schemaVersion)") } == true,
                "\(migrates.output)")
        try FileManager.default.removeItem(atPath: database)

        // A PostgreSQL database that does not answer (a port nothing listens on), its password in the URL: not printed.
        let closed = try ReservedPorts(count: 1)
        let unreachable = try await installation.doctor(["SIGILLO_DATABASE": "postgres://sigillo:sekret-pw-4711@127.0.0.1:\(closed.base)/sigillo"])
        closed.release()
        #expect(unreachable.status == 1)
        #expect(Self.line(unreachable.lines, "database").map { $0.hasPrefix("FAIL") && $0.contains("cannot be read") } == true, "\(unreachable.output)")
        #expect(!unreachable.output.contains("sekret-pw-4711"), "\(unreachable.output)")

        // A wrong PIN: refused, said so, and the PIN is not printed.
        let wrongPIN = installation.folder.appendingPathComponent("wrong.pin")
        try FileManager.default.createFile(atPath: wrongPIN.path, contents: Data("not-the-pin-4711\n".utf8), attributes: [.posixPermissions: 0o600])
        let refused = try await installation.doctor(["SIGILLO_PIN_FILE": wrongPIN.path])
        #expect(refused.status == 1)
        #expect(Self.line(refused.lines, "pin").map { $0.hasPrefix("FAIL") && $0.contains("refused the PIN") } == true, "\(refused.output)")
        #expect(!refused.output.contains("not-the-pin-4711") && !refused.output.contains(installation.fixture.userPIN))
        // The right PIN works again afterwards (SoftHSM does not lock), and the token may say a wrong one was tried.
        let after = try await installation.doctor()
        #expect(after.status == 0, "\(after.output)")
        #expect(Self.line(after.lines, "pin").map { $0.contains("the PIN is right") || $0.contains("accepted the PIN") } == true, "\(after.output)")
        if TestHSM.modulePath.hasSuffix("libsofthsm2.so") {
            // SoftHSM flags the wrong attempt (CKF_USER_PIN_COUNT_LOW) until the next good login: doctor says so, as a warning.
            #expect(Self.line(after.lines, "pin").map { $0.hasPrefix("WARNING") && $0.contains("a wrong PIN was tried") } == true, "\(after.output)")
            let cleared = try await installation.doctor()
            #expect(Self.line(cleared.lines, "pin").map { $0.hasPrefix("ok") } == true, "\(cleared.output)")
        }
        #expect(!after.output.contains(installation.fixture.userPIN))
    }

    @Test("PostgreSQL: serve seals it, doctor checks its schema and seed key, the online backup is refused naming pg_dump, a newer schema is a FAIL")
    func postgres() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: AdminCLITests.binary), "build the executable first: swift build")
        let postgres = try await TestPostgres.shared
        let settings = try await postgres.makeDatabase()
        var installation = try await Installation()
        installation.environment["SIGILLO_DATABASE"] = postgres.url(database: settings.database)
        installation.environment["SIGILLO_DATABASE_PASSWORD_ENV"] = "SIGILLO_TEST_PGPASSWORD"
        installation.environment["SIGILLO_TEST_PGPASSWORD"] = postgres.password
        let fresh = try await installation.doctor()
        #expect(fresh.status == 0, "\(fresh.output)")
        #expect(Self.line(fresh.lines, "database").map { $0.hasPrefix("ok") && $0.contains("is new") && !$0.contains(postgres.password) } == true, "\(fresh.output)")
        #expect(Self.line(fresh.lines, "database-folder") == nil)

        // serve migrates and seals it; the operator's backup is refused with what to do instead.
        let base = installation.ports.base
        let (process, log) = try LogLines.run(AdminCLITests.binary, ["serve", "--log-level", "info"], environment: installation.environment,
                                              waitingFor: ["Server started and listening on 127.0.0.1:\(base + 1)"])
        defer { if process.isRunning { process.terminate() } }
        try await log.events[0].wait()
        try #require(process.isRunning, "serve did not start on PostgreSQL")
        let certs = installation.certs
        let backup = installation.folder.appendingPathComponent("pg-backup")
        let refused = try await runOffPool(AdminCLITests.binary, [
            "admin", "backup", backup.path, "--url", "https://127.0.0.1:\(base + 1)", "--cert", certs.appendingPathComponent("operator.pem").path,
            "--key", certs.appendingPathComponent("operator-key.pem").path, "--ca", certs.appendingPathComponent("tls-ca.pem").path,
        ], environment: installation.environment)
        #expect(refused.status == 1 && refused.output.contains("pg_dump -Fc") && refused.output.contains("use_pg_dump"), "\(refused.output)")
        #expect(!FileManager.default.fileExists(atPath: backup.path), "the folder made for the backup is removed again")
        process.terminate()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread {
                process.waitUntilExit()
                continuation.resume()
            }.start()
        }

        let sealed = try await installation.doctor()
        #expect(sealed.status == 0, "\(sealed.output)")
        #expect(Self.line(sealed.lines, "database").map { $0.hasPrefix("ok") && $0.contains("schema version \(PostgresStore.schemaVersion), this binary's") } == true, "\(sealed.output)")
        #expect(Self.line(sealed.lines, "seed-key").map { $0.hasPrefix("ok") && $0.contains("sealed with") } == true, "\(sealed.output)")
        try await postgres.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (\(PostgresStore.schemaVersion + 1), 'from a newer sigillo', 0)",
                                   database: settings.database)
        let newer = try await installation.doctor()
        #expect(newer.status == 1)
        #expect(Self.line(newer.lines, "database").map {
            $0.hasPrefix("FAIL") && $0.contains("schema version \(PostgresStore.schemaVersion + 1), newer than this binary's \(PostgresStore.schemaVersion)")
        } == true, "\(newer.output)")
    }

    @Test("the clock: before the CA certificate's start or behind the newest audit record is a FAIL")
    func clock() throws {
        let folder = try TestHSM.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let caFile = folder.appendingPathComponent("ca.pem")
        let made = try run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=Clock CA",
                                       "-days", "30", "-keyout", folder.appendingPathComponent("ca-key.pem").path, "-out", caFile.path])
        try #require(made.status == 0, "\(made.output)")
        let certificate = try Certificate(pemEncoded: String(contentsOf: caFile, encoding: .utf8))
        var configuration = ServerConfiguration()
        configuration.caCertificate = caFile.path
        let start = certificate.notValidBefore

        let right = Doctor(configurationPath: nil, now: start.addingTimeInterval(3600)).clock(configuration, newestAudit: start.addingTimeInterval(1800))
        #expect(right.first { $0.name == "clock" }?.status == .ok, "\(right)")
        let early = Doctor(configurationPath: nil, now: start.addingTimeInterval(-86400)).clock(configuration, newestAudit: nil)
        #expect(early.first { $0.name == "clock" }.map { $0.status == .fail && $0.message.contains("before the CA certificate's start") } == true, "\(early)")
        let behind = Doctor(configurationPath: nil, now: start.addingTimeInterval(3600)).clock(configuration, newestAudit: start.addingTimeInterval(7200))
        #expect(behind.first { $0.name == "clock" }.map { $0.status == .fail && $0.message.contains("newest audit record") } == true, "\(behind)")
        let expired = Doctor(configurationPath: nil, now: certificate.notValidAfter.addingTimeInterval(60)).clock(configuration, newestAudit: nil)
        #expect(expired.first { $0.name == "clock" }.map { $0.status == .fail && $0.message.contains("expired") } == true, "\(expired)")
        // The NTP line is a warning at worst, never a FAIL.
        #expect(right.first { $0.name == "ntp" }.map { $0.status != .fail } == true)
    }
}
