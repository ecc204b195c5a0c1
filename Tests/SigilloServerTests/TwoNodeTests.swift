import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import PKCS11
import SigilloDomain
import SigilloPostgres
import SigilloServer
import SigilloTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Two `sigillo serve` processes on one PostgreSQL database and one token reached through p11-kit's RPC, as a
/// production cluster runs (README "Several nodes"): what one node does, the other sees at once.
@Suite("Two nodes: one PostgreSQL database, one token over p11-kit", .serialized)
struct TwoNodeTests {
    static let limit = Duration.seconds(300)

    /// The cluster of a test: the token server, the database, both nodes, an in-process domain on the same database and
    /// token for what an operator's tools do (holders, activation), and an HTTPS client per node.
    final class Cluster: @unchecked Sendable {
        let directory: URL
        let hsm: P11KitServer
        let settings: PostgresSettings
        let environment: [String: String]
        let ports: [Int]
        var nodes: [LoggedProcess] = []
        let operatorToken: Token
        let services: SigilloServices
        let client: HTTPClient
        let postgres: TestPostgres

        init(directory: URL, hsm: P11KitServer, postgres: TestPostgres, settings: PostgresSettings, environment: [String: String], ports: [Int],
             operatorToken: Token, services: SigilloServices, client: HTTPClient) {
            self.directory = directory
            self.hsm = hsm
            self.postgres = postgres
            self.settings = settings
            self.environment = environment
            self.ports = ports
            self.operatorToken = operatorToken
            self.services = services
            self.client = client
        }

        /// Node `index` (0: A, 1: B) as a `LiveServer` for requests: its port, this test's client and the operator's services.
        func node(_ index: Int) -> LiveServer {
            LiveServer(port: self.ports[2 * index], client: self.client, directory: self.directory, services: self.services)
        }

        /// Starts node `index` and waits until its public listener is up.
        func start(_ index: Int) async throws {
            var environment = self.environment
            environment["SIGILLO_PORT"] = String(self.ports[2 * index])
            environment["SIGILLO_ADMIN_PORT"] = String(self.ports[2 * index + 1])
            environment["SIGILLO_PKI_PORT"] = String(self.ports[4 + index])
            environment["SIGILLO_PKI_URL"] = "http://127.0.0.1:\(self.ports[4])"
            let node = try LoggedProcess(AdminCLITests.binary, ["serve", "--log-level", "info"], environment: environment)
            self.nodes.append(node)
            try await node.waitForLine(containing: "listening on 127.0.0.1:\(self.ports[2 * index])", limit: TwoNodeTests.limit)
        }

        /// An operator action on node `index`'s admin listener (mutual TLS with the operator certificate).
        func admin(_ index: Int, _ path: String) async throws -> (status: Int32, output: String) {
            let certs = self.directory.appendingPathComponent("certs")
            return try await runOffPool("curl", [
                "-sS", "--max-time", "120", "-X", "POST", "-H", "Content-Type: application/json", "-d", "{}",
                "--cacert", certs.appendingPathComponent("tls-ca.pem").path, "--cert", certs.appendingPathComponent("operator.pem").path,
                "--key", certs.appendingPathComponent("operator-key.pem").path, "https://127.0.0.1:\(self.ports[2 * index + 1])/admin/v1/\(path)",
            ])
        }

        func stop() async {
            for node in self.nodes { node.kill() }
            try? await self.client.shutdown()
            self.operatorToken.close()
            await self.hsm.stop()
        }
    }

    /// Sets up a cluster (both nodes started) and runs `body`.
    static func withCluster(postgres server: TestPostgres? = nil, _ body: (Cluster) async throws -> Void) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: AdminCLITests.binary), "build the executable first: swift build")
        let fixture = try TestToken.unopened()
        let directory = fixture.directory
        let certs = directory.appendingPathComponent("certs")
        try LiveServer.makeCertificates(in: certs)
        let hsm = try P11KitServer(exporting: fixture)
        try await hsm.start()
        let postgres: TestPostgres
        if let server { postgres = server } else { postgres = try await TestPostgres.shared }
        let settings = try await postgres.makeDatabase(maximumConnections: 10)
        // Public and admin ports of node 0 and 1, then their publication listeners'.
        let reserved = try ReservedPorts(count: 6)
        let ports = (0..<6).map { reserved.base + $0 }
        var environment = AdminCLITests.serveEnvironment(hsm.clientEnvironment(hsm.serverEnvironment), folder: directory,
                                                         module: P11KitServer.clientModulePath, token: hsm.tokenURI, pinFile: hsm.pinFile, sessions: 2)
        environment["SIGILLO_DATABASE"] = postgres.url(database: settings.database) + "?pool=10"
        environment["SIGILLO_DATABASE_PASSWORD_ENV"] = "SIGILLO_TEST_PGPASSWORD"
        environment["SIGILLO_TEST_PGPASSWORD"] = postgres.password
        environment["SIGILLO_RATE_LIMIT_PER_ADDRESS"] = "0"
        environment["SIGILLO_RATE_LIMIT_PER_ACCOUNT"] = "0"
        let initialized = try await runOffPool(AdminCLITests.binary, ["ca", "init", "--algorithm", "ecdsa-p256"], environment: environment)
        try #require(initialized.status == 0, "\(initialized.output)")

        // The operator's side, in this process: its own p11-kit client connection, the same database.
        let operatorToken = try hsm.openToken(sessions: 2)
        var configuration = try ServerConfiguration.load(path: nil, environment: environment)
        // Its password in the URL: this process does not have the nodes' variable.
        configuration.database = "postgres://sigillo:\(postgres.password)@127.0.0.1:\(postgres.port)/\(settings.database)?pool=4"
        configuration.databasePasswordEnvironment = nil
        var logger = Logger(label: "test-operator")
        logger.logLevel = .critical
        let services = try await SigilloServices.open(
            configuration: configuration, token: operatorToken, passwords: PasswordHasher(parameters: Argon2Parameters(memoryKiB: 1024, iterations: 1, parallelism: 1)),
            logger: logger)
        var clientConfiguration = HTTPClient.Configuration(tlsConfiguration: LiveServer.clientTLS(trusting: certs.appendingPathComponent("tls-ca.pem").path))
        clientConfiguration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        let cluster = Cluster(directory: directory, hsm: hsm, postgres: postgres, settings: settings, environment: environment, ports: ports,
                              operatorToken: operatorToken, services: services, client: client)
        reserved.release()
        do {
            try await cluster.start(0)
            try await cluster.start(1)
            try await body(cluster)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    static func hash(_ text: String) -> String {
        Data(SHA256.hash(data: Data(text.utf8))).base64EncodedString()
    }

    static func login(_ node: LiveServer, _ account: LiveServer.Account) async throws -> String {
        let response = try await node.post("/csc/v1/auth/login", basic: (account.username, account.password))
        return try #require(response.json["access_token"] as? String, "\(response.json)")
    }

    static func authorize(_ node: LiveServer, _ account: inout LiveServer.Account, token: String, hashes: [String], otp: String? = nil) async throws -> CSCResponse {
        let code: String
        if let otp { code = otp } else { code = await account.nextOTP() }
        return try await node.post("/csc/v1/credentials/authorize", [
            "credentialID": account.credential.id, "numSignatures": hashes.count, "hash": hashes, "PIN": account.password, "OTP": code,
        ], bearer: token)
    }

    static func signHash(_ node: LiveServer, _ account: LiveServer.Account, token: String, sad: String, hashes: [String]) async throws -> CSCResponse {
        try await node.post("/csc/v1/signatures/signHash", [
            "credentialID": account.credential.id, "SAD": sad, "hash": hashes, "signAlgo": "1.2.840.10045.4.3.2",
        ], bearer: token)
    }

    /// Runs `body` `count` times at once and returns every result, in index order (result `i` is `body(i)`'s).
    static func race<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) async throws -> T) async throws -> [T] {
        try await withThrowingTaskGroup(of: (Int, T).self) { group in
            for index in 0..<count { group.addTask { (index, try await body(index)) } }
            var results: [(Int, T)] = []
            for try await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// The CRL number of the CRL node `node` publishes now.
    static func crlNumber(_ node: LiveServer, folder: URL) async throws -> Int {
        let response = try await node.client.execute(HTTPClientRequest(url: node.baseURL + "/crl/ca.crl"), timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 1 << 20)
        let file = folder.appendingPathComponent("crl-\(UUID().uuidString).der")
        try Data(buffer: body).write(to: file)
        let text = try await runOffPool("openssl", ["crl", "-inform", "DER", "-in", file.path, "-noout", "-crlnumber"]).output
        // "crlNumber=0x1A"
        let hex = try #require(text.split(separator: "=").last?.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "0x", with: ""))
        return try #require(Int(hex, radix: 16), "\(text)")
    }

    @Test("authorize on A, sign on B; one SAD spent once by 32 clients on both; an OTP used on A refused on B; one lockout count; a suspension on A stops B at once; CRL numbers grow; one intact audit chain")
    func oneServiceOnTwoNodes() async throws {
        try await Self.withCluster { cluster in
            let (a, b) = (cluster.node(0), cluster.node(1))
            var account = try await LiveServer.activate(cluster.services.domain, name: "Duo", device: .hotp)
            let token = try await Self.login(a, account)

            // Authorized on A, signed on B (the bearer token is the database's, too).
            let first = Self.hash("first document")
            let authorized = try await Self.authorize(a, &account, token: token, hashes: [first])
            let sad = try #require(authorized.json["SAD"] as? String, "\(authorized.json)")
            let signed = try await Self.signHash(b, account, token: token, sad: sad, hashes: [first])
            #expect(signed.status == 200, "\(signed.json)")
            #expect((signed.json["signatures"] as? [String])?.count == 1)

            // One SAD for one signature, 32 clients on both nodes: one signature.
            let raced = Self.hash("raced document")
            let racedSAD = try #require(try await Self.authorize(b, &account, token: token, hashes: [raced]).json["SAD"] as? String)
            let frozen = account
            let answers = try await Self.race(32) { index in
                try await Self.signHash(index.isMultiple(of: 2) ? a : b, frozen, token: token, sad: racedSAD, hashes: [raced]).status
            }
            #expect(answers.filter { $0 == 200 }.count == 1, "\(answers)")
            #expect(answers.filter { $0 == 400 }.count == 31, "\(answers)")

            // An OTP accepted on A is refused on B.
            let otp = await account.nextOTP()
            #expect(try await Self.authorize(a, &account, token: token, hashes: [Self.hash("a")], otp: otp).status == 200)
            let replayed = try await Self.authorize(b, &account, token: token, hashes: [Self.hash("b")], otp: otp)
            #expect(replayed.status == 400, "\(replayed.json)")

            // 30 wrong passwords split across the nodes: 5 evaluated, the holder locked on both.
            let locked = try await LiveServer.activate(cluster.services.domain, name: "Lock", device: .hotp)
            _ = try await Self.race(30) { index in
                try await (index.isMultiple(of: 2) ? a : b).post("/csc/v1/auth/login", basic: (locked.username, "wrong password \(index)")).status
            }
            #expect(try await cluster.services.store.secretFailures(holderID: locked.holder.id).password == 5)
            #expect(try await b.post("/csc/v1/auth/login", basic: (locked.username, locked.password)).status == 401)
            #expect(try await a.post("/csc/v1/auth/login", basic: (locked.username, locked.password)).status == 401)

            // A SAD authorized, the credential suspended through A's admin listener: B refuses to sign with it at once.
            let held = Self.hash("held document")
            let heldSAD = try #require(try await Self.authorize(b, &account, token: token, hashes: [held]).json["SAD"] as? String)
            let before = try await Self.crlNumber(b, folder: cluster.directory)
            let suspended = try await cluster.admin(0, "credentials/\(account.credential.id)/suspend")
            #expect(suspended.output.contains("suspended"), "\(suspended.output)")
            let refused = try await Self.signHash(b, account, token: token, sad: heldSAD, hashes: [held])
            #expect(refused.status != 200, "\(refused.json)")
            // Each node's next CRL lists it, under a number above every earlier one, whichever node built it.
            let afterOnA = try await Self.crlNumber(a, folder: cluster.directory)
            let afterOnB = try await Self.crlNumber(b, folder: cluster.directory)
            #expect(before < afterOnA && afterOnA < afterOnB, "\(before) \(afterOnA) \(afterOnB)")
            let reinstated = try await cluster.admin(1, "credentials/\(account.credential.id)/reinstate")
            #expect(reinstated.output.contains("active"), "\(reinstated.output)")
            let later = try await Self.crlNumber(a, folder: cluster.directory)
            #expect(later > afterOnB)

            // Every node wrote to one chain, concurrently: intact, and nothing above the head was ever handed out.
            let records = try await cluster.services.store.auditRecords()
            #expect(AuditChain.firstBrokenRecord(records) == nil)
            #expect(try await cluster.services.store.auditSequenceHighWater() == records.last?.sequence)
            #expect(records.contains { $0.event.action == "credential.suspend" })
            for node in cluster.nodes { #expect(node.isRunning) }
        }
    }

    @Test("kill -9 of node A under load: B keeps serving; every signature A answered is spent, none twice, nothing committed lost")
    func nodeKilledUnderLoad() async throws {
        try await Self.withCluster { cluster in
            let (a, b) = (cluster.node(0), cluster.node(1))
            var account = try await LiveServer.activate(cluster.services.domain, name: "Kill", device: .hotp)
            let token = try await Self.login(b, account)
            // 24 SADs of one signature each, authorized on B.
            var work: [(sad: String, hash: String)] = []
            for index in 0..<24 {
                let hash = Self.hash("document \(index)")
                let sad = try #require(try await Self.authorize(b, &account, token: token, hashes: [hash]).json["SAD"] as? String)
                work.append((sad, hash))
            }
            let frozen = account
            let firstAnswer = TestEvent("a first answer from A")
            let jobs = work
            // All of them sent to A at once; A is killed as soon as it answered one.
            async let onA: [Int?] = Self.race(jobs.count) { index in
                do {
                    let answer = try await Self.signHash(a, frozen, token: token, sad: jobs[index].sad, hashes: [jobs[index].hash])
                    firstAnswer.fire()
                    return answer.status
                } catch {
                    return nil
                }
            }
            try await firstAnswer.wait()
            cluster.nodes[0].kill()
            let answeredByA = try await onA
            #expect(!cluster.nodes[0].isRunning)
            #expect(answeredByA.contains(200))

            // Every SAD retried on B: the ones A signed are spent, the others sign now. None signs twice.
            var signedOnB = 0
            for (index, job) in jobs.enumerated() {
                let answer = try await Self.signHash(b, frozen, token: token, sad: job.sad, hashes: [job.hash])
                if answer.status == 200 { signedOnB += 1 }
                if answeredByA[index] == 200 {
                    #expect(answer.status == 400, "SAD \(index) signed on A, then again on B: \(answer.json)")
                }
            }
            let signedOnA = answeredByA.filter { $0 == 200 }.count
            #expect(signedOnA + signedOnB <= jobs.count)
            // What A committed is in the database: each SAD A answered 200 for is used.
            let store = cluster.services.store
            for (index, job) in jobs.enumerated() where answeredByA[index] == 200 {
                #expect(try await store.sad(idHash: Array(SHA256.hash(data: Data(job.sad.utf8))))?.used == 1)
            }
            #expect(try await store.auditRecords().count > 0)
            #expect(AuditChain.firstBrokenRecord(try await store.auditRecords()) == nil)
            // B goes on: a new authorization and signature.
            let fresh = Self.hash("after the kill")
            let sad = try #require(try await Self.authorize(b, &account, token: token, hashes: [fresh]).json["SAD"] as? String)
            let after = try await Self.signHash(b, account, token: token, sad: sad, hashes: [fresh])
            #expect(after.status == 200, "\(after.json)")
        }
    }

    @Test("PostgreSQL gone for a while: both nodes answer 503 (temporarily_unavailable) and are not ready, then sign again once it is back, no restart")
    func databaseOutage() async throws {
        let postgres = try await TestPostgres.start()
        try await Self.withCluster(postgres: postgres) { cluster in
            let (a, b) = (cluster.node(0), cluster.node(1))
            var account = try await LiveServer.activate(cluster.services.domain, name: "Gone", device: .hotp)
            let token = try await Self.login(a, account)
            let before = Self.hash("before")
            let sad = try #require(try await Self.authorize(a, &account, token: token, hashes: [before]).json["SAD"] as? String)

            try await postgres.kill()
            for node in [a, b] {
                let answer = try await Self.signHash(node, account, token: token, sad: sad, hashes: [before])
                #expect(answer.status == 503, "\(answer.json)")
                #expect(answer.error == "temporarily_unavailable")
                #expect(try await node.get("/health/ready") == 503)
            }
            try await postgres.launch()
            // Each node's pool reconnects by itself: wait for readiness (an event), then sign with the SAD made before.
            for node in [a, b] {
                var ready = false
                for _ in 0..<300 where !ready { ready = try await node.get("/health/ready") == 200 }
                #expect(ready)
            }
            #expect(try await Self.signHash(b, account, token: token, sad: sad, hashes: [before]).status == 200)
            for node in cluster.nodes { #expect(node.isRunning) }
        }
        await postgres.stop()
    }

    @Test("migrate-store copies an SQLite installation into PostgreSQL: holders, sealed seeds (same token), SADs, one intact audit chain; never into a used database")
    func migrateStore() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: AdminCLITests.binary), "build the executable first: swift build")
        let fixture = try TestToken()
        let (account, sqlite, head) = try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Moved", device: .hotp)
            return (account, server.services, try await server.services.store.auditHead())
        }
        let path = fixture.directory.appendingPathComponent("server/sigillo.sqlite").path
        _ = sqlite
        let postgres = try await TestPostgres.shared
        let settings = try await postgres.makeDatabase()
        var environment = TestHSM.environment
        environment["SIGILLO_DATABASE"] = path
        environment["MOVE_PGPASSWORD"] = postgres.password
        let arguments = ["admin", "migrate-store", "--to", postgres.url(database: settings.database), "--password-env", "MOVE_PGPASSWORD"]
        let moved = try await runOffPool(AdminCLITests.binary, arguments, environment: environment)
        #expect(moved.status == 0, "\(moved.output)")
        #expect(moved.output.contains("audit chain intact"), "\(moved.output)")
        #expect(!moved.output.contains(postgres.password))

        let vault = try await SeedVault.open(token: fixture.token)
        let store = try await PostgresStore(settings: settings, vault: vault, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { store.close() }
        #expect(try await store.holder(username: account.username)?.id == account.holder.id)
        #expect(try await store.credential(id: account.credential.id)?.status == .active)
        // The device's seed was sealed by this token: it opens, and it is the holder's.
        #expect(try await store.activeOTPDevice(holderID: account.holder.id)?.secret == account.secret)
        let records = try await store.auditRecords()
        #expect(AuditChain.firstBrokenRecord(records) == nil)
        #expect(records.last?.hash == head?.hash)
        // The chain goes on from the copied head.
        try await store.audit(AuditEvent(actor: "test", action: "test.after-move", target: "", outcome: "ok", details: ""), at: Date())
        #expect(AuditChain.firstBrokenRecord(try await store.auditRecords()) == nil)

        let again = try await runOffPool(AdminCLITests.binary, arguments, environment: environment)
        #expect(again.status != 0)
        #expect(again.output.contains("already holds an installation"), "\(again.output)")
    }

    @Test("HAProxy in front (the README's configuration): requests reach both nodes; node A killed, every new connection is served by B")
    func behindHAProxy() async throws {
        try await Self.withCluster { cluster in
            let reserved = try ReservedPorts(count: 1)
            let port = reserved.base
            let configuration = """
                global
                    log stdout format raw local0
                defaults
                    mode tcp
                    timeout connect 2s
                    timeout client 60s
                    timeout server 60s
                    retries 2
                    option redispatch
                frontend signing
                    bind 127.0.0.1:\(port)
                    default_backend sigillo
                backend sigillo
                    balance roundrobin
                    option httpchk GET /health/ready
                    http-check expect status 200
                    default-server check check-ssl verify none inter 1s fall 2 rise 2
                    server a 127.0.0.1:\(cluster.ports[0])
                    server b 127.0.0.1:\(cluster.ports[2])

                """
            let file = cluster.directory.appendingPathComponent("haproxy.cfg")
            try Data(configuration.utf8).write(to: file)
            reserved.release()
            let haproxy = try LoggedProcess("/usr/sbin/haproxy", ["-W", "-db", "-f", file.path], environment: TestHSM.environment)
            defer { haproxy.kill() }
            try await haproxy.waitForLine(containing: "Loading success", limit: Self.limit)

            let front = LiveServer(port: port, client: cluster.client, directory: cluster.directory, services: cluster.services)
            var account = try await LiveServer.activate(cluster.services.domain, name: "Balanced", device: .hotp)
            let token = try await Self.login(front, account)
            let hash = Self.hash("through the balancer")
            let sad = try #require(try await Self.authorize(front, &account, token: token, hashes: [hash]).json["SAD"] as? String)
            #expect(try await Self.signHash(front, account, token: token, sad: sad, hashes: [hash]).status == 200)

            cluster.nodes[0].kill()
            // New connections (curl, one each): those sent to A are refused and redispatched to B.
            let tlsCA = cluster.directory.appendingPathComponent("certs/tls-ca.pem").path
            for _ in 0..<6 {
                let answer = try await runOffPool("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "60", "--cacert", tlsCA,
                                                           "https://127.0.0.1:\(port)/health/ready"])
                #expect(answer.output == "200", "\(answer.output)")
            }
        }
    }
}
