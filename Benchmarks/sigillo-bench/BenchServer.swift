import AsyncHTTPClient
import Crypto
import _CryptoExtras
import Foundation
import Histogram
import Logging
import NIOCore
import NIOSSL
import PKCS11
import CSCClient
import CSCProtocol
import SigilloDomain
import SigilloMail
import SigilloPKI
import SigilloPostgres
import SigilloSQLite
import SigilloServer
import SwiftASN1
import Synchronization
import X509

/// A Sigillo server for the benchmark: fresh token, CA, TLS certificates and database in a temporary folder;
/// holders made in this process through the domain service, the server itself a child `sigillo serve`
/// process (so its CPU time is its own, read from /proc).
final class BenchServer: Sendable {
    let directory: URL
    let configuration: ServerConfiguration
    let tokenConfiguration: TokenConfiguration
    /// This process's own sessions on the same token (setup, raw baseline).
    let token: Token
    let service: Domain
    /// The public and admin ports of each node (`sigillo serve` process); node 0's are the configuration's.
    let nodePorts: [(public: Int, admin: Int)]
    private let children = Mutex<[ChildProcess]>([])

    /// The running `sigillo serve` and its exit status, once.
    private final class ChildProcess: @unchecked Sendable {
        // Set once before being shared; Process is thread-safe for what is used here (pid, isRunning).
        let process: Process
        let exits: AsyncStream<Int32>
        init(process: Process, exits: AsyncStream<Int32>) {
            self.process = process
            self.exits = exits
        }
    }

    var baseURL: String { self.baseURLs[0] }
    /// Every node's public URL; clients are spread over them.
    var baseURLs: [String] { self.nodePorts.map { "https://127.0.0.1:\($0.public)" } }
    var tlsCAFile: String { self.directory.appendingPathComponent("tls-ca.pem").path }
    var pids: [Int32] { self.children.withLock { $0.map(\.process.processIdentifier) } }
    var pid: Int32? { self.pids.first }

    private init(directory: URL, configuration: ServerConfiguration, tokenConfiguration: TokenConfiguration, token: Token, service: Domain,
                 nodePorts: [(public: Int, admin: Int)]) {
        self.directory = directory
        self.configuration = configuration
        self.tokenConfiguration = tokenConfiguration
        self.token = token
        self.service = service
        self.nodePorts = nodePorts
    }

    /// Makes the token, certificates, CA and database; the server is not started yet.
    ///
    /// - Parameter multisign: the `multisign` of the credentials activated here.
    /// - Parameter nodes: `sigillo serve` processes on the one database and token (more than one needs PostgreSQL).
    /// - Parameter holderKeys: where the holders' keys are kept (the KEK is made in the token for `wrapped`).
    static func make(label: String, module: String, multisign: Int, database: String? = nil, databasePasswordEnvironment: String? = nil,
                     nodes: Int = 1, holderKeys: HolderKeyStorage = .wrapped,
                     unwrappedKeyCache: Int = TokenConfiguration.defaultUnwrappedKeyCacheSize) async throws -> BenchServer {
        guard nodes == 1 || database.map(PostgresSettings.isURL) == true else {
            throw ConfigurationError("several nodes need a PostgreSQL database (--database postgres://…)")
        }
        let tokenConfiguration = try BenchHSMRoot.makeToken(label: label, module: module)
        let directory = BenchHSMRoot.root.appendingPathComponent(label)
        let token = try Token.open(tokenConfiguration)
        try BenchTLS.write(to: directory)
        var configuration = ServerConfiguration()
        configuration.port = try freePort()
        configuration.adminPort = try freePort()
        configuration.publicBaseURL = "https://127.0.0.1:\(configuration.port)"
        configuration.tlsCertificate = directory.appendingPathComponent("server.pem").path
        configuration.tlsKey = directory.appendingPathComponent("server-key.pem").path
        // No time-stamping authority: the bench signs hashes only.
        configuration.tsaCertificate = directory.appendingPathComponent("tsa.pem").path
        configuration.adminCA = directory.appendingPathComponent("tls-ca.pem").path
        configuration.pkcs11Module = module
        configuration.token = label
        if case .file(let path) = tokenConfiguration.pin { configuration.pinFile = path }
        configuration.hsmSessions = ProcessInfo.processInfo.activeProcessorCount
        configuration.database = database ?? directory.appendingPathComponent("sigillo.sqlite").path
        configuration.databasePasswordEnvironment = databasePasswordEnvironment
        configuration.caCertificate = directory.appendingPathComponent("ca.pem").path
        configuration.outboxFile = nil
        // Every bench client comes from 127.0.0.1: the anonymous routes' limits would refuse the logins.
        configuration.rateLimits = .unlimited
        configuration.holderKeys = holderKeys
        configuration.unwrappedKeyCache = unwrappedKeyCache
        if holderKeys == .wrapped { try await token.createKEK() }
        let name = try DistinguishedName { CountryName("IT"); OrganizationName("Sigillo Bench"); CommonName("Sigillo Bench CA") }
        let ca = try await CertificateAuthority.create(token: token, keyID: configuration.caKeyID, name: name, now: Date().addingTimeInterval(-60))
        try ca.certificatePEM.write(toFile: configuration.caCertificate, atomically: true, encoding: .utf8)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(configuration).write(to: directory.appendingPathComponent("server.json"))
        var logger = Logger(label: "sigillo-bench")
        logger.logLevel = .warning
        let store = try await SigilloServices.openStore(configuration: configuration, token: token, logger: logger)
        var settings = DomainSettings(publicBaseURL: configuration.publicBaseURL)
        settings.defaultMultisign = multisign
        settings.holderKeys = holderKeys
        let service = Domain(store: store, signer: Signer(token: token), ca: ca, crl: CRLPublisher(ca: ca, store: store), settings: settings,
                                     notifier: OutboxNotifier(file: nil), logger: logger)
        var nodePorts = [(public: configuration.port, admin: configuration.adminPort)]
        for _ in 1..<max(1, nodes) { nodePorts.append((try freePort(), try freePort())) }
        return BenchServer(directory: directory, configuration: configuration, tokenConfiguration: tokenConfiguration, token: token, service: service,
                           nodePorts: nodePorts)
    }

    /// Creates, invites and activates `count` holders (HOTP hardware tokens), one at a time: SoftHSM 2.6.1 now
    /// and then fails a key generation (CKR_TEMPLATE_INCONSISTENT, CKR_GENERAL_ERROR) when generations overlap.
    /// A holder whose activation failed anyway is made again (new holder, invitation and key): activation is
    /// all or nothing, so a retry is clean.
    func activateHolders(count: Int, algorithm: KeyAlgorithm, prefix: String) async throws -> [BenchAccount] {
        var accounts: [BenchAccount] = []
        for index in 0..<count {
            accounts.append(try await retrying { try await self.activateHolder(name: "\(prefix)\(index)", algorithm: algorithm) })
        }
        return accounts
    }

    private func activateHolder(name: String, algorithm: KeyAlgorithm) async throws -> BenchAccount {
        let unique = "\(name)-\(UUID().uuidString.prefix(6).lowercased())"
        let holder = try await self.service.enrollment.createHolder(
            givenName: "Bench", surname: "Client", fiscalCode: Self.fiscalCode(), email: "bench.\(unique)@example.it",
            mobile: "+39333\(Int.random(in: 1_000_000...9_999_999))", actor: "operator:bench", recognized: true)
        let invitation = try await self.service.enrollment.invite(holderID: holder.id, actor: "operator:bench")
        let secret = (0..<20).map { _ in UInt8.random(in: .min ... .max) }
        _ = try await self.service.enrollment.beginActivation(invitationCode: invitation.code, device: .hotp(serial: "BENCH-\(unique)", secret: secret))
        let username = "bench-\(unique)"
        let password = "bench " + UUID().uuidString
        let credential = try await self.service.enrollment.completeActivation(
            invitationCode: invitation.code, username: username, password: password, otp: HOTP.code(secret: secret, counter: 0), keyAlgorithm: algorithm)
        return BenchAccount(username: username, password: password, secret: secret, credential: credential)
    }

    /// A valid-looking codice fiscale (right check character) with a random body.
    static func fiscalCode() -> String {
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        let body = (0..<6).map { _ in String(letters.randomElement()!) }.joined()
            + String(format: "%02d", Int.random(in: 0...99)) + "A" + String(format: "%02d", Int.random(in: 1...28))
            + "H" + String(format: "%03d", Int.random(in: 0...999))
        return letters.lazy.map { body + String($0) }.first(where: HolderIdentity.isValidFiscalCode) ?? body + "A"
    }

    /// Starts `sigillo serve` (the `sigillo` executable built beside this one) for every node and waits until each is ready.
    func start() async throws {
        for (index, ports) in self.nodePorts.enumerated() {
            try await self.startNode(index, ports: ports)
        }
    }

    private func startNode(_ index: Int, ports: (public: Int, admin: Int)) async throws {
        let bench = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let executable = URL(fileURLWithPath: bench).deletingLastPathComponent().appendingPathComponent("sigillo").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ConfigurationError("\(executable) is missing: build the sigillo product too (make bench does)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["serve", "--config", self.directory.appendingPathComponent("server.json").path, "--log-level", "warning"]
        var environment = ProcessInfo.processInfo.environment
        environment["SIGILLO_PORT"] = String(ports.public)
        environment["SIGILLO_ADMIN_PORT"] = String(ports.admin)
        environment["SIGILLO_PKI_PORT"] = String(try freePort())
        process.environment = environment
        let logPath = self.directory.appendingPathComponent(index == 0 ? "server.log" : "server-\(index).log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        let (exits, continuation) = AsyncStream.makeStream(of: Int32.self)
        process.terminationHandler = { process in
            continuation.yield(process.terminationStatus)
            continuation.finish()
        }
        try process.run()
        let child = ChildProcess(process: process, exits: exits)
        self.children.withLock { $0.append(child) }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(self.tlsCAFile)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        let ready = await self.waitUntilReady(child.process, url: "https://127.0.0.1:\(ports.public)", client: client)
        try? await client.shutdown()
        if !ready {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            await self.stop()
            throw ConfigurationError("the bench server did not start: \(text.suffix(2000))")
        }
    }

    private func waitUntilReady(_ process: Process, url: String, client: HTTPClient) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(300)
        while ContinuousClock.now < deadline, process.isRunning {
            if let response = try? await client.execute(HTTPClientRequest(url: url + "/health/ready"), timeout: .seconds(5)), response.status == .ok {
                return true
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// SIGTERM to every node, and waits for the exits (SIGKILL after 20 s).
    func stop() async {
        let children = self.children.withLock { children in defer { children = [] }; return children }
        for child in children {
            let pid = child.process.processIdentifier
            kill(pid, SIGTERM)
            let killer = Task {
                try await Task.sleep(for: .seconds(20))
                kill(pid, SIGKILL)
            }
            for await _ in child.exits { break }
            killer.cancel()
        }
    }

    /// Stops the server and closes this process's token sessions.
    func close() async {
        await self.stop()
        self.token.close()
    }

    /// CPU seconds (user + system) the server process used so far.
    func serverCPUSeconds() -> Double {
        self.pids.compactMap(cpuSeconds(pid:)).reduce(0, +)
    }
}

/// CPU seconds (user + system) of a process, from /proc/PID/stat.
func cpuSeconds(pid: Int32) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let paren = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: paren)...].split(separator: " ")
    // After the command name: state is field 3, utime 14, stime 15.
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// A loopback port free right now.
func freePort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw ConfigurationError("socket() failed") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    guard ok else { throw ConfigurationError("cannot find a free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}
