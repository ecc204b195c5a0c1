import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import SigilloDomain
import SigilloServer
import SigilloSQLite
import SigilloTestSupport
import Testing
import X509
#if canImport(Glibc)
import Glibc
#endif

/// `sigillo admin backup` against a live installation, and the restore drill: the copy and a copy of the token in a new
/// folder, `sigillo restore`, `sigillo serve`, and the holder signs there; next to another token, or newer than the
/// binary, the copy is refused.
@Suite("Backup and restore: the drill")
struct BackupRestoreTests {
    static let binary = AdminCLITests.binary

    @Test("back up a live installation, restore it next to a copy of its token, start it, the holder signs; other token and newer schema refused")
    func drill() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the executable first: swift build")
        let fixture = try TestToken()
        let backup = fixture.directory.appendingPathComponent("backup")
        // 1. The live installation: a holder activated (HOTP device) who signs, then the operator's online backup.
        let (account, tokenEnvironment, live) = try await AdminServer.with(fixture) { admin -> (LiveServer.Account, [String: String], URL) in
            var account = try await admin.server.activate(name: "Rita", device: .hotp)
            let signed = try await Self.sign(&account, message: Data("before the backup".utf8), client: admin.server.client, baseURL: admin.server.baseURL)
            #expect(signed.status == 200, "\(signed.json)")

            let directory = admin.directory
            let connection = ["--url", admin.baseURL, "--cert", directory.appendingPathComponent("operator.pem").path,
                              "--key", directory.appendingPathComponent("operator-key.pem").path, "--ca", directory.appendingPathComponent("tls-ca.pem").path]
            // A snapshot left over by a server stopped while sending one: the next backup removes it.
            let leftover = directory.appendingPathComponent(".backup-left-over.sqlite")
            try Data("stale".utf8).write(to: leftover)
            let made = try await runOffPool(Self.binary, ["admin", "backup", backup.path] + connection)
            #expect(!FileManager.default.fileExists(atPath: leftover.path))
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).allSatisfy { !$0.hasPrefix(".backup-") })
            #expect(made.status == 0, "\(made.output)")
            #expect(made.output.contains("backup written to") && made.output.contains("the token is not in it"), "\(made.output)")
            // A folder that is not empty is refused, and left alone.
            let again = try await runOffPool(Self.binary, ["admin", "backup", backup.path] + connection)
            #expect(again.status != 0 && again.output.contains("not empty"), "\(again.output)")
            // The backup is in the audit log, by the operator.
            let records = try await admin.server.services.store.auditRecords()
            #expect(records.contains { $0.event.action == "database.backup" && $0.event.outcome == "ok" && $0.event.actor.contains("CN=operator") })
            // The holder signs again after the copy: the device's counter moves past the one in the copy.
            let after = try await Self.sign(&account, message: Data("after the backup".utf8), client: admin.server.client, baseURL: admin.server.baseURL)
            #expect(after.status == 200, "\(after.json)")
            // The token folder, copied (SoftHSM: its files; the in-process server writes nothing to it while idle).
            return (account, try fixture.isolatedEnvironment(), directory)
        }

        // 2. The backup folder: private, its manifest true to the copy and naming the token's objects.
        #expect(try Self.mode(backup.path) == 0o700)
        for file in ["sigillo.sqlite", "manifest.json", "README.txt"] {
            #expect(try Self.mode(backup.appendingPathComponent(file).path) == 0o600, "\(file)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: backup.path).sorted() == ["README.txt", "manifest.json", "sigillo.sqlite"])
        let manifest = try JSONDecoder().decode(BackupManifest.self, from: Data(contentsOf: backup.appendingPathComponent("manifest.json")))
        let copy = backup.appendingPathComponent("sigillo.sqlite").path
        let digest = try BackupFiles.sha256(path: copy)
        #expect(manifest.sha256 == digest.hex && manifest.bytes == digest.bytes)
        #expect(manifest.schemaVersion == SQLiteStore.schemaVersion && manifest.store == "sqlite")
        #expect(manifest.token.label == fixture.label && manifest.token.serial?.isEmpty == false)
        #expect(manifest.createdBy.contains("CN=operator"))
        let roles = Dictionary(uniqueKeysWithValues: manifest.tokenKeys.map { ($0.role, $0) })
        #expect(Set(roles.keys) == ["ca", "seed-key", "audit-key", "kek", "kek-binding", "tsa"])
        #expect(roles.values.allSatisfy { $0.present }, "\(manifest.tokenKeys)")
        #expect(roles["ca"]?.id == "sigillo-ca" && roles["seed-key"]?.id == "sigillo-seed-key" && roles["kek"]?.id == "sigillo-kek")
        let readme = try String(contentsOf: backup.appendingPathComponent("README.txt"), encoding: .utf8)
        #expect(readme.contains("SoftHSM") && readme.contains("softhsm2-util") && readme.contains("network HSM") && readme.contains("key ceremony"))
        #expect(readme.contains(fixture.label) && readme.contains("sigillo-kek-binding"))
        // The copy is a whole SQLite database, its own backup record in it.
        let check = try run("sqlite3", [copy, "PRAGMA integrity_check; SELECT COUNT(*) FROM audit_events WHERE action = 'database.backup';"])
        #expect(check.status == 0 && check.output.split(separator: "\n") == ["ok", "1"], "\(check.output)")
        #expect(!FileManager.default.fileExists(atPath: copy + "-wal"))

        // 3. A new folder: the certificates (as the operator restores /etc/sigillo), a configuration, `sigillo restore`.
        let restored = fixture.directory.appendingPathComponent("restored")
        let ports = try ReservedPorts(count: 3)
        let configuration = try Self.installation(in: restored, certificatesFrom: live, token: fixture, ports: ports.base)
        let placed = try await runOffPool(Self.binary, ["restore", backup.path, "--config", configuration], environment: tokenEnvironment)
        #expect(placed.status == 0 && placed.output.contains("SHA-256 checked"), "\(placed.output)")
        let database = restored.appendingPathComponent("var/sigillo.sqlite").path
        #expect(try BackupFiles.sha256(path: database).hex == manifest.sha256)
        #expect(try Self.mode(database) == 0o600 && Self.mode(restored.appendingPathComponent("var").path) == 0o700)
        let twice = try await runOffPool(Self.binary, ["restore", backup.path, "--config", configuration], environment: tokenEnvironment)
        #expect(twice.status != 0 && twice.output.contains("exists"), "\(twice.output)")

        // 4. Next to another token: refused at start, naming the seed key (and doctor says so first).
        let other = try TestToken.unopened()
        try Self.privatePIN(other.pinFile)
        var otherEnvironment = try other.isolatedEnvironment()
        otherEnvironment["SIGILLO_TOKEN"] = other.label
        otherEnvironment["SIGILLO_PIN_FILE"] = other.pinFile
        let doctorOther = try await runOffPool(Self.binary, ["doctor", "--config", configuration], environment: otherEnvironment)
        #expect(doctorOther.status == 1, "\(doctorOther.output)")
        #expect(doctorOther.output.split(separator: "\n").contains { $0.hasPrefix("FAIL") && $0.contains("seed-key") && $0.contains("wrong token") }, "\(doctorOther.output)")
        let refused = try await runOffPool(Self.binary, ["serve", "--config", configuration], environment: otherEnvironment)
        #expect(refused.status != 0 && refused.output.contains("seed key"), "\(refused.output)")

        // 5. A database newer than the binary: `restore` refuses its manifest, `serve` and `doctor` the database.
        let newer = fixture.directory.appendingPathComponent("newer")
        try FileManager.default.copyItem(at: backup, to: newer)
        let newerCopy = newer.appendingPathComponent("sigillo.sqlite").path
        let bumped = try run("sqlite3", [newerCopy, "INSERT INTO grdb_migrations (identifier) VALUES ('v\(SQLiteStore.schemaVersion + 1): from a newer sigillo')"])
        try #require(bumped.status == 0, "\(bumped.output)")
        let altered = try await runOffPool(Self.binary, ["restore", newer.path, "--config", configuration], environment: tokenEnvironment)
        #expect(altered.status != 0 && altered.output.contains("damaged or altered"), "\(altered.output)")
        var newerManifest = manifest
        (newerManifest.sha256, newerManifest.bytes) = try BackupFiles.sha256(path: newerCopy)
        newerManifest.schemaVersion = SQLiteStore.schemaVersion + 1
        try JSONEncoder().encode(newerManifest).write(to: newer.appendingPathComponent("manifest.json"))
        let tooNew = try await runOffPool(Self.binary, ["restore", newer.path, "--config", configuration], environment: tokenEnvironment)
        #expect(tooNew.status != 0 && tooNew.output.contains("schema version \(SQLiteStore.schemaVersion + 1), newer than this binary's \(SQLiteStore.schemaVersion)"),
                "\(tooNew.output)")
        let newerFolder = fixture.directory.appendingPathComponent("newer-installation")
        let newerConfiguration = try Self.installation(in: newerFolder, certificatesFrom: live, token: fixture, ports: ports.base)
        try FileManager.default.createDirectory(at: newerFolder.appendingPathComponent("var"), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try FileManager.default.copyItem(atPath: newerCopy, toPath: newerFolder.appendingPathComponent("var/sigillo.sqlite").path)
        let newerServe = try await runOffPool(Self.binary, ["serve", "--config", newerConfiguration], environment: tokenEnvironment)
        #expect(newerServe.status != 0 && newerServe.output.contains("newer than this binary's \(SQLiteStore.schemaVersion)"), "\(newerServe.output)")

        // 6. The restored installation: doctor finds nothing wrong, serve starts, and the holder signs with the device's
        //    next code (two presses past the copy's counter: within the HOTP look-ahead).
        ports.release()
        let doctor = try await runOffPool(Self.binary, ["doctor", "--config", configuration], environment: tokenEnvironment)
        #expect(doctor.status == 0, "\(doctor.output)")
        // A server that stops (a refused start) ends the wait too.
        let (process, log) = try LogLines.run(Self.binary, ["serve", "--config", configuration, "--log-level", "info"], environment: tokenEnvironment,
                                              waitingFor: ["Server started and listening on 127.0.0.1:\(ports.base)"])
        defer { if process.isRunning { process.terminate() } }
        try await log.events[0].wait()
        try #require(process.isRunning, "the restored installation did not start")
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: LiveServer.clientTLS(trusting: live.appendingPathComponent("tls-ca.pem").path)))
        var holder = account
        let message = Data("signed on the restored installation".utf8)
        let signed = try await Self.sign(&holder, message: message, client: client, baseURL: "https://127.0.0.1:\(ports.base)")
        try await client.shutdown()
        #expect(signed.status == 200 && (signed.json["signatures"] as? [String])?.count == 1, "\(signed.json)")
        // With the holder's own key: the wrapped key in the copy, opened by the copied token's KEK.
        let signature = try #require((signed.json["signatures"] as? [String])?.first.flatMap { Data(base64Encoded: $0) })
        let publicKey = try #require(P256.Signing.PublicKey(try Certificate(derEncoded: holder.credential.certificateDER).publicKey))
        #expect(publicKey.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: signature), for: SHA256.hash(data: message)))
        process.terminate()
        let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            Thread {
                process.waitUntilExit()
                continuation.resume(returning: process.terminationStatus)
            }.start()
        }
        #expect(status == 0)
    }

    @Test("an SQLite database migrated by a newer binary is refused before any migration, naming both versions")
    func newerSchemaRefused() async throws {
        let folder = try TestHSM.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("db/sigillo.sqlite").path
        _ = try SQLiteStore(path: path, vault: nil)
        #expect(try SQLiteStore.databaseSchemaVersion(path: path) == SQLiteStore.schemaVersion)
        let next = SQLiteStore.schemaVersion + 1
        #expect(try run("sqlite3", [path, "INSERT INTO grdb_migrations (identifier) VALUES ('v\(next): from a newer sigillo')"]).status == 0)
        #expect(try SQLiteStore.databaseSchemaVersion(path: path) == next)
        let error = #expect(throws: SigilloError.self) { _ = try SQLiteStore(path: path, vault: nil) }
        #expect(error?.message == "the database has schema version \(next), newer than this binary's \(SQLiteStore.schemaVersion): upgrade sigillo first")
        // Nothing was written to it: the refusal comes before any migration.
        #expect(try SQLiteStore.databaseSchemaVersion(path: path) == next)
    }

    // MARK: Helpers

    /// Logs in, authorizes one hash with the holder's password and next HOTP code, and signs it.
    static func sign(_ account: inout LiveServer.Account, message: Data, client: HTTPClient, baseURL: String) async throws -> (status: Int, json: [String: Any]) {
        let login = try await self.post(client, baseURL + "/csc/v1/auth/login", [:], basic: (account.username, account.password))
        let token = try #require(login.json["access_token"] as? String, "\(login.json)")
        let hash = Data(SHA256.hash(data: message)).base64EncodedString()
        let authorized = try await self.post(client, baseURL + "/csc/v1/credentials/authorize", [
            "credentialID": account.credential.id, "numSignatures": 1, "hash": [hash], "PIN": account.password, "OTP": await account.nextOTP(),
        ], bearer: token)
        let sad = try #require(authorized.json["SAD"] as? String, "\(authorized.json)")
        return try await self.post(client, baseURL + "/csc/v1/signatures/signHash", [
            "credentialID": account.credential.id, "SAD": sad, "hash": [hash], "signAlgo": "1.2.840.10045.4.3.2",
        ], bearer: token)
    }

    static func post(_ client: HTTPClient, _ url: String, _ body: [String: Any], bearer: String? = nil, basic: (String, String)? = nil) async throws -> (status: Int, json: [String: Any]) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        if let basic { request.headers.add(name: "Authorization", value: "Basic " + Data("\(basic.0):\(basic.1)".utf8).base64EncodedString()) }
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let response = try await client.execute(request, timeout: .seconds(120))
        let bytes = try await response.body.collect(upTo: 1 << 22)
        let json = bytes.readableBytes == 0 ? [:] : (try JSONSerialization.jsonObject(with: Data(buffer: bytes)) as? [String: Any] ?? [:])
        return (Int(response.status.code), json)
    }

    /// A new installation's folder: `certs/` copied from `live` (TLS, admin CA, CA and TSA certificates), `var/` for the
    /// database, and `sigillo.json` on `token` with ports `ports`…`ports+2`. - Returns: the configuration's path.
    static func installation(in folder: URL, certificatesFrom live: URL, token: TestToken, ports: Int) throws -> String {
        let certs = folder.appendingPathComponent("certs")
        try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for file in ["server.pem", "server-key.pem", "tls-ca.pem", "admin-ca.pem", "ca.pem", "tsa.pem"] {
            try FileManager.default.copyItem(at: live.appendingPathComponent(file), to: certs.appendingPathComponent(file))
        }
        try self.privatePIN(token.pinFile)
        let configuration: [String: Any] = [
            "host": "127.0.0.1", "port": ports, "adminPort": ports + 1, "pkiPort": ports + 2, "pkiBaseURL": "http://127.0.0.1:\(ports + 2)",
            "publicBaseURL": "https://127.0.0.1:\(ports)",
            "pkcs11Module": TestHSM.modulePath, "token": token.label, "pinFile": token.pinFile, "hsmSessions": 1,
            "database": folder.appendingPathComponent("var/sigillo.sqlite").path,
            "tlsCertificate": certs.appendingPathComponent("server.pem").path, "tlsKey": certs.appendingPathComponent("server-key.pem").path,
            "adminCA": certs.appendingPathComponent("admin-ca.pem").path, "caCertificate": certs.appendingPathComponent("ca.pem").path,
            "caChain": certs.appendingPathComponent("ca-chain.pem").path, "tsaCertificate": certs.appendingPathComponent("tsa.pem").path,
            "outboxFile": folder.appendingPathComponent("var/outbox.jsonl").path, "mailFile": folder.appendingPathComponent("var/mail.jsonl").path,
        ]
        let path = folder.appendingPathComponent("sigillo.json").path
        try JSONSerialization.data(withJSONObject: configuration, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The test token's PIN file, made private as an operator keeps it (doctor fails one others can read).
    static func privatePIN(_ path: String) throws {
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
    }

    static func mode(_ path: String) throws -> Int {
        ((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1) & 0o777
    }
}
