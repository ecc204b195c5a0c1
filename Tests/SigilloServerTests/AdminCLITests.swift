import Foundation
import CSCClient
import CSCProtocol
import SigilloDomain
import SigilloMail
import SigilloPKI
import SigilloSQLite
import SigilloTestSupport
import Testing

@Suite("sigillo admin CLI against a live admin listener")
struct AdminCLITests {
    /// The debug build of the executable (`swift build --build-tests` builds it).
    static let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/sigillo").path

    /// The environment of a child `sigillo serve` (or `ca init`) in `folder`: the token (`module`, `token`, `pinFile`),
    /// `sessions` HSM sessions, and the files `LiveServer.makeCertificates` made in `folder/certs` and the database and
    /// SMS outbox in `folder/var`. Ports, mail and anything else are the caller's.
    static func serveEnvironment(_ base: [String: String], folder: URL, module: String, token: String, pinFile: String, sessions: Int) -> [String: String] {
        var environment = base
        let certs = folder.appendingPathComponent("certs")
        environment["SIGILLO_PKCS11_MODULE"] = module
        environment["SIGILLO_TOKEN"] = token
        environment["SIGILLO_PIN_FILE"] = pinFile
        environment["SIGILLO_HSM_SESSIONS"] = String(sessions)
        environment["SIGILLO_DATABASE"] = folder.appendingPathComponent("var/sigillo.sqlite").path
        environment["SIGILLO_OUTBOX_FILE"] = folder.appendingPathComponent("var/outbox.jsonl").path
        environment["SIGILLO_CA_CERTIFICATE"] = certs.appendingPathComponent("ca.pem").path
        environment["SIGILLO_CA_CHAIN"] = certs.appendingPathComponent("ca-chain.pem").path
        environment["SIGILLO_TSA_CERTIFICATE"] = certs.appendingPathComponent("tsa.pem").path
        environment["SIGILLO_TLS_CERTIFICATE"] = certs.appendingPathComponent("server.pem").path
        environment["SIGILLO_TLS_KEY"] = certs.appendingPathComponent("server-key.pem").path
        environment["SIGILLO_ADMIN_CA"] = certs.appendingPathComponent("admin-ca.pem").path
        return environment
    }

    @Test("holders create/list/show, invite, credentials, suspend/reinstate/revoke, audit verify/export, issue-operator")
    func endToEnd() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the executable first: swift build")
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            let directory = admin.directory
            let connection = ["--url", admin.baseURL, "--cert", directory.appendingPathComponent("operator.pem").path,
                              "--key", directory.appendingPathComponent("operator-key.pem").path, "--ca", directory.appendingPathComponent("tls-ca.pem").path]
            func sigillo(_ arguments: [String], connect: Bool = true) async throws -> (status: Int32, output: String) {
                try await runOffPool(Self.binary, ["admin"] + arguments + (connect ? connection : []))
            }

            let whoami = try await sigillo(["whoami"])
            #expect(whoami.status == 0, "\(whoami.output)")
            #expect(whoami.output.contains("CN=operator"))

            let fiscalCode = TestData.fiscalCode()
            let created = try await sigillo(["holders", "create", "--given-name", "Anna", "--surname", "Verdi", "--fiscal-code", fiscalCode,
                                             "--email", "anna.\(UUID().uuidString.prefix(6))@example.it", "--mobile", "+393401234567", "--json"])
            #expect(created.status == 0, "\(created.output)")
            let holder = try #require(try JSONSerialization.jsonObject(with: Data(created.output.utf8)) as? [String: Any])
            let holderID = try #require(holder["id"] as? String)

            let list = try await sigillo(["holders", "list"])
            #expect(list.status == 0)
            #expect(list.output.contains(holderID) && list.output.contains("Anna Verdi"))
            let show = try await sigillo(["holders", "show", holderID])
            #expect(show.output.contains(fiscalCode))
            let missing = try await sigillo(["holders", "show", "h-nobody"])
            #expect(missing.status == 1)
            #expect(missing.output.contains("no holder"))

            let setMobile = try await sigillo(["holders", "set-mobile", holderID, "--mobile", "+39 340 7654321"])
            #expect(setMobile.status == 0, "\(setMobile.output)")
            #expect(setMobile.output.contains("+393407654321"))

            for step in ["payment_registered", "awaiting_processing", "awaiting_documents", "recognized"] {
                let moved = try await sigillo(["holders", "advance", holderID, "--to", step])
                #expect(moved.status == 0 && moved.output.contains("state       \(step)"), "\(moved.output)")
            }
            let illegal = try await sigillo(["holders", "advance", holderID, "--to", "awaiting_documents"])
            #expect(illegal.status == 1 && illegal.output.contains("illegal_transition"), "\(illegal.output)")
            let invite = try await sigillo(["invite", holderID])
            #expect(invite.status == 0, "\(invite.output)")
            #expect(invite.output.contains("activation code: ") && invite.output.contains("expires: "))

            // An activated holder made through the domain, then the credential commands.
            let account = try await admin.server.activate()
            let credentials = try await sigillo(["credentials", "list", account.holder.id])
            #expect(credentials.output.contains(account.credential.id) && credentials.output.contains("status      active"))
            #expect(try await sigillo(["unlock", account.credential.id]).status == 0)
            let suspend = try await sigillo(["suspend", account.credential.id])
            #expect(suspend.output.contains("status      suspended"), "\(suspend.output)")
            let reinstate = try await sigillo(["reinstate", account.credential.id, "--json"])
            #expect((try JSONSerialization.jsonObject(with: Data(reinstate.output.utf8)) as? [String: Any])?["status"] as? String == "active")
            let revoke = try await sigillo(["revoke", account.credential.id, "--reason", "cessationOfOperation"])
            #expect(revoke.status == 0, "\(revoke.output)")
            #expect(revoke.output.contains("status      revoked") && revoke.output.contains("cessationOfOperation"))
            #expect(try await !HolderKeyProbe.exists(account.credential.id, store: admin.server.services.store, token: fixture.token))
            let again = try await sigillo(["reinstate", account.credential.id])
            #expect(again.status == 1)
            #expect(again.output.contains("irreversible"))

            // The CRL written by the CLI lists the revoked certificate and verifies against the CA.
            let crlPath = directory.appendingPathComponent("cli.crl").path
            let crl = try await sigillo(["crl", "--output", crlPath])
            #expect(crl.status == 0 && crl.output.contains("CRL written to"), "\(crl.output)")
            let crlText = try await runOffPool("openssl", ["crl", "-inform", "DER", "-in", crlPath, "-CAfile", admin.server.caFile, "-noout", "-verify", "-text"])
            #expect(crlText.status == 0 && crlText.output.contains("verify OK"), "\(crlText.output)")
            #expect(crlText.output.contains(account.credential.serialNumber) && crlText.output.contains("Cessation Of Operation"), "\(crlText.output)")

            let checkpoint = try await sigillo(["audit", "checkpoint"])
            #expect(checkpoint.status == 0 && checkpoint.output.contains("signs the log through record"), "\(checkpoint.output)")
            let verify = try await sigillo(["audit", "verify"])
            #expect(verify.status == 0, "\(verify.output)")
            #expect(verify.output.contains("audit log intact") && verify.output.contains("by 1 signed checkpoint(s)"), "\(verify.output)")
            let export = try await sigillo(["audit", "export"])
            #expect(export.output.split(separator: "\n").contains { $0.contains("\"action\":\"credential.revoke\"") && $0.contains("CN=operator") })
            try admin.tamper("UPDATE audit_events SET outcome = 'ok' WHERE action = 'credential.reinstate' AND outcome = 'refused'")
            let broken = try await sigillo(["audit", "verify"])
            #expect(broken.status == 1)
            #expect(broken.output.contains("AUDIT LOG BROKEN"))
            let reset = try await sigillo(["audit", "reset-anchor"])
            #expect(reset.status == 0 && reset.output.contains("audit anchor: record"), "\(reset.output)")

            // Lost device: the operator re-binds a TOTP app; the holder's code from the new app completes it.
            var other = try await admin.server.activate(name: "Nina", device: .hotp)
            let rebind = try await sigillo(["rebind", "begin", other.holder.id, "--device", "totp", "--json"])
            #expect(rebind.status == 0, "\(rebind.output)")
            let started = try #require(try JSONSerialization.jsonObject(with: Data(rebind.output.utf8)) as? [String: Any])
            let token = try #require(started["token"] as? String)
            let newSecret = try #require((started["secret"] as? String).flatMap(Base32.decode))
            #expect((started["otpauthURI"] as? String)?.hasPrefix("otpauth://totp/") == true)
            #expect(try await sigillo(["rebind", "complete", token, "--otp", "000000"]).status == 1)
            let bound = try await sigillo(["rebind", "complete", token, "--otp", TOTP.code(secret: newSecret, time: Date())])
            #expect(bound.status == 0 && bound.output.contains("new device bound"), "\(bound.output)")
            let oldCode = await other.nextOTP()
            let login = try #require(try await admin.server.post("/csc/v1/auth/login", basic: (other.username, other.password)).json["access_token"] as? String)
            let stale = try await admin.server.post("/csc/v1/credentials/authorize", [
                "credentialID": other.credential.id, "numSignatures": 1, "hash": [Data(repeating: 1, count: 32).base64EncodedString()],
                "PIN": other.password, "OTP": oldCode,
            ], bearer: login)
            #expect(stale.status == 400 && stale.error == "invalid_otp", "\(stale.json)")

            // The expiry jobs on demand, and closing a holder (every credential revoked, keys destroyed).
            let lifecycle = try await sigillo(["lifecycle"])
            #expect(lifecycle.status == 0 && lifecycle.output.contains("reminders sent 0"), "\(lifecycle.output)")
            // Holder keys are wrapped already (a new installation): nothing to migrate.
            let migrate = try await sigillo(["keys", "migrate"])
            #expect(migrate.status == 0 && migrate.output.contains("0 migrated, 0 skipped"), "\(migrate.output)")
            let closed = try await sigillo(["holders", "revoke", other.holder.id, "--reason", "privilegeWithdrawn"])
            #expect(closed.status == 0 && closed.output.contains("state       revoked"), "\(closed.output)")
            #expect(try await !HolderKeyProbe.exists(other.credential.id, store: admin.server.services.store, token: fixture.token))
            #expect(try await sigillo(["holders", "revoke", other.holder.id]).status == 1)

            // A second operator, issued from the admin CA with the CLI, is recognised by name.
            let issued = try await sigillo(["issue-operator", "alice", "--admin-ca", directory.appendingPathComponent("admin-ca.pem").path,
                                            "--admin-ca-key", directory.appendingPathComponent("admin-ca-key.pem").path, "--output", directory.path], connect: false)
            #expect(issued.status == 0, "\(issued.output)")
            let alice = try await runOffPool(Self.binary, ["admin", "whoami", "--url", admin.baseURL, "--cert", directory.appendingPathComponent("alice.pem").path,
                                                           "--key", directory.appendingPathComponent("alice-key.pem").path, "--ca", directory.appendingPathComponent("tls-ca.pem").path])
            #expect(alice.status == 0, "\(alice.output)")
            #expect(alice.output.contains("CN=alice"))
        }
    }
}

@Suite("sigillo serve: both listeners")
struct ServeBothListenersTests {
    @Test("serve answers on the public and the admin port, delivers queued mail through the SMTP relay, and stops on SIGTERM")
    func serveAndStop() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: AdminCLITests.binary), "build the executable first: swift build")
        let fixture = try TestToken.unopened()
        let directory = fixture.directory
        try LiveServer.makeCertificates(in: directory.appendingPathComponent("certs"))
        let ports = try ReservedPorts(count: 3)
        let base = ports.base
        var environment = AdminCLITests.serveEnvironment(try fixture.isolatedEnvironment(), folder: directory, module: TestHSM.modulePath,
                                                         token: fixture.label, pinFile: fixture.pinFile, sessions: 1)
        environment["SIGILLO_PORT"] = String(base)
        environment["SIGILLO_ADMIN_PORT"] = String(base + 1)
        environment["SIGILLO_PKI_PORT"] = String(base + 2)
        environment["SIGILLO_PKI_URL"] = "http://127.0.0.1:\(base + 2)"
        let initialized = try await runOffPool(AdminCLITests.binary, ["ca", "init", "--algorithm", "ecdsa-p256"], environment: environment)
        try #require(initialized.status == 0, "\(initialized.output)")
        // A mail queued before the start (by an earlier run, or another node): the server's dispatcher delivers it.
        let relay = try await TestSMTPRelay.sink(folder: directory.appendingPathComponent("mail"))
        defer { Task { await relay.stop() } }
        environment["SIGILLO_SMTP_HOST"] = "127.0.0.1"
        environment["SIGILLO_SMTP_PORT"] = String(relay.port)
        environment["SIGILLO_SMTP_TLS"] = "none"
        environment["SIGILLO_SMTP_FROM"] = "firma@sigillo.example.it"
        let store = try SQLiteStore(path: directory.appendingPathComponent("var/sigillo.sqlite").path, vault: nil)
        try await OutboxMailer(store: store, dispatcher: nil).send(MailTemplates.usernameReminder(name: "Mario", username: "mario"), to: "mario@example.it")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: AdminCLITests.binary)
        // At info level the server says when each listener is up and when a mail went out: the test waits for those lines.
        process.arguments = ["serve", "--log-level", "info"]
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        let log = LogLines(["Server started and listening on 127.0.0.1:\(base)", "Server started and listening on 127.0.0.1:\(base + 1)", "mail sent"])
        process.standardError = log.pipe
        ports.release()
        try process.run()
        log.start()
        defer { if process.isRunning { process.interrupt() } }

        let certs = directory.appendingPathComponent("certs")
        // --max-time only keeps a broken build from hanging; the listeners are up before any request is sent.
        let curl = { (arguments: [String]) async throws -> (status: Int32, output: String) in
            try await runOffPool("curl", ["-sS", "--max-time", "300", "--cacert", certs.appendingPathComponent("tls-ca.pem").path] + arguments)
        }
        try await log.events[0].wait()
        try await log.events[1].wait()
        let ready = try await curl(["https://127.0.0.1:\(base)/health/ready"])
        #expect(ready.output.contains("\"status\":\"ok\""), "\(ready.output)")
        let admin = try await curl(["--cert", certs.appendingPathComponent("operator.pem").path, "--key", certs.appendingPathComponent("operator-key.pem").path,
                                    "https://127.0.0.1:\(base + 1)/admin/v1/whoami"])
        #expect(admin.output.contains("CN=operator"), "\(admin.output)")
        let anonymous = try await curl(["https://127.0.0.1:\(base + 1)/admin/v1/whoami"])
        #expect(anonymous.status != 0)
        // The dispatcher logs "mail sent" once the relay accepted the mail and its row is marked sent.
        try await log.events[2].wait()
        #expect(try relay.receivedDescriptions().count == 1)
        #expect(try await store.mails().map(\.status) == [.sent])

        process.terminate()
        let status = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, any Error>) in
            Thread {
                process.waitUntilExit()
                continuation.resume(returning: process.terminationStatus)
            }.start()
        }
        #expect(status == 0)
        // Nothing after the last checkpoint: the shutdown one (or a periodic one, when nothing came after it) is last,
        // after the listeners' and the dispatcher's records.
        let head = try #require(try await store.auditHead())
        #expect(head.event.action == AuditCheckpoint.action && AuditCheckpoint(details: head.event.details) != nil, "\(head.event)")
        #expect(try await store.auditRecords().contains { $0.event.action == "mail.send" })
        await relay.stop()
    }
}

/// A child process's log (its stderr), read line by line on a thread of its own: each of `patterns` becomes an event that
/// fires at the first line containing it.
final class LogLines: Sendable {
    let pipe = Pipe()
    let patterns: [String]
    let events: [TestEvent]

    init(_ patterns: [String]) {
        self.patterns = patterns
        self.events = patterns.map { TestEvent("a log line with '\($0)'") }
    }

    /// Starts `binary` with `arguments` and `environment` (stdout discarded), its stderr read by the `LogLines` of
    /// `patterns`; when the process ends, the first event fires too, so a refused start ends the wait for it. The caller
    /// stops the process.
    static func run(_ binary: String, _ arguments: [String], environment: [String: String], waitingFor patterns: [String]) throws -> (Process, LogLines) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        let log = LogLines(patterns)
        process.standardError = log.pipe
        process.terminationHandler = { _ in log.events[0].fire() }
        try process.run()
        log.start()
        return (process, log)
    }

    /// Reads until the process closes its stderr (call after it started).
    func start() {
        let handle = self.pipe.fileHandleForReading
        Thread {
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let end = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[pending.startIndex..<end], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...end)
                    for (pattern, event) in zip(self.patterns, self.events) where line.contains(pattern) { event.fire() }
                }
            }
        }.start()
    }
}
