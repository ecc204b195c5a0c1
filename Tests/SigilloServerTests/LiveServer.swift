import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOSSL
import PKCS11
import CSCClient
import SigilloDomain
import SigilloMail
import SigilloCMS
import SigilloPKI
import SigilloServer
import X509
import SigilloTestSupport

/// A real Sigillo server on a loopback port with its own TLS certificates, token and folder, and an HTTPS
/// client that trusts only that server's CA.
struct LiveServer {
    let port: Int
    let client: HTTPClient
    let directory: URL
    let services: SigilloServices
    /// The plain-HTTP publication listener's port, when `with(…, pki: true)` started it.
    var pkiPort: Int? = nil
    /// The URL written in the certificates this server issues (`http://127.0.0.1:<pkiPort>` with `pki: true`).
    var pkiBaseURL: String { self.services.domain.settings.pkiBaseURL }
    var tsaFile: String { self.directory.appendingPathComponent("tsa.pem").path }
    var caFile: String { self.directory.appendingPathComponent("ca.pem").path }
    var tlsCAFile: String { self.directory.appendingPathComponent("tls-ca.pem").path }

    var baseURL: String { "https://127.0.0.1:\(self.port)" }

    /// Makes dev certificates with the project's own script (the one `make run` uses).
    static func makeCertificates(in directory: URL) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("certs/dev-certs.sh").path
        let result = try run("/bin/sh", [script, directory.path])
        guard result.status == 0 else { throw ConfigurationError("dev-certs.sh failed: \(result.output)") }
    }

    static func clientTLS(trusting ca: String) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(ca)
        return tls
    }

    /// Starts the server, runs `body`, then shuts the server down gracefully.
    /// - Parameter mailRelayPort: deliver mail (its dispatcher running) to a plain SMTP relay on 127.0.0.1 at this port;
    ///   otherwise mail stays in the outbox table.
    /// - Parameter rateLimits: the anonymous routes' limits; by default none, since a suite's many requests all come from
    ///   127.0.0.1 (`RateLimitTests` sets its own).
    /// - Parameter pki: also run the plain-HTTP publication listener (CA certificate, CRL, OCSP, TSA) on a reserved port,
    ///   the URL written in the certificates issued.
    static func with<T: Sendable>(_ fixture: TestToken, clock: ServiceClock = .system, mailRelayPort: Int? = nil, rateLimits: RateLimitSettings = .unlimited,
                                  pki: Bool = false, holderKeys: HolderKeyStorage? = nil, offlineRoot: Bool = false,
                                  _ body: @Sendable (LiveServer) async throws -> T) async throws -> T {
        try await self.with(token: fixture.token, in: fixture.directory, clock: clock, mailRelayPort: mailRelayPort, rateLimits: rateLimits, pki: pki,
                            holderKeys: holderKeys, offlineRoot: offlineRoot, body)
    }

    /// `with` on any open `token` (one reached through p11-kit, say), the server's files in `root/server`.
    static func with<T: Sendable>(token: Token, in root: URL, clock: ServiceClock = .system, mailRelayPort: Int? = nil, rateLimits: RateLimitSettings = .unlimited,
                                  pki: Bool = false, holderKeys: HolderKeyStorage? = nil, offlineRoot: Bool = false,
                                  _ body: @Sendable (LiveServer) async throws -> T) async throws -> T {
        let reserved = pki ? try ReservedPorts(count: 1) : nil
        let (defaults, services, logger) = try await self.services(token: token, in: root, clock: clock, mailRelayPort: mailRelayPort, pkiPort: reserved?.base,
                                                                   holderKeys: holderKeys, offlineRoot: offlineRoot)
        var configuration = defaults
        configuration.rateLimits = rateLimits
        let directory = root.appendingPathComponent("server")
        let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = try SigilloApplication.make(configuration: configuration, services: services, logger: logger) { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
            portContinuation.finish()
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: self.clientTLS(trusting: directory.appendingPathComponent("tls-ca.pem").path)))
        let dispatcher = mailRelayPort.map { _ in Task { try await services.mailDispatcher.run() } }
        defer { dispatcher?.cancel() }
        guard let reserved else {
            return try await self.serve(app, ports: portStream, client: client) { port in
                try await body(LiveServer(port: port, client: client, directory: directory, services: services))
            }
        }
        reserved.release()
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        let publication = PKIApplication.make(configuration: configuration, services: services, logger: logger) { _ in
            startedContinuation.yield()
            startedContinuation.finish()
        }
        let running = Task { try await publication.run() }
        do {
            let result = try await self.serve(app, ports: portStream, client: client) { port in
                for await _ in started {}
                return try await body(LiveServer(port: port, client: client, directory: directory, services: services, pkiPort: reserved.base))
            }
            running.cancel()
            _ = await running.result
            return result
        } catch {
            running.cancel()
            _ = await running.result
            throw error
        }
    }

    /// A server's configuration and services on `fixture`'s token, with a new CA, TLS certificates and database in
    /// its folder (what `with` serves; router tests use them without a listener).
    static func services(_ fixture: TestToken, clock: ServiceClock = .system, mailRelayPort: Int? = nil, holderKeys: HolderKeyStorage? = nil) async throws -> (ServerConfiguration, SigilloServices, Logger) {
        try await self.services(token: fixture.token, in: fixture.directory, clock: clock, mailRelayPort: mailRelayPort, holderKeys: holderKeys)
    }

    /// `services` on any open `token`, the files in `root/server`.
    ///
    /// - Parameter holderKeys: the configuration's `holderKeys` (nil: left out, as a new installation: wrapped).
    /// - Parameter offlineRoot: the CA is an issuing CA an openssl root (`root/root.pem`) certified, its chain in
    ///   `ca-chain.pem`; otherwise a self-signed CA.
    static func services(token: Token, in root: URL, clock: ServiceClock = .system, mailRelayPort: Int? = nil, pkiPort: Int? = nil,
                         holderKeys: HolderKeyStorage? = nil, offlineRoot: Bool = false) async throws -> (ServerConfiguration, SigilloServices, Logger) {
        let directory = root.appendingPathComponent("server")
        try self.makeCertificates(in: directory)
        var configuration = ServerConfiguration()
        configuration.holderKeys = holderKeys
        configuration.port = 0
        if let pkiPort {
            configuration.pkiPort = pkiPort
            configuration.pkiBaseURL = "http://127.0.0.1:\(pkiPort)"
        }
        configuration.tsaCertificate = directory.appendingPathComponent("tsa.pem").path
        configuration.tlsCertificate = directory.appendingPathComponent("server.pem").path
        configuration.tlsKey = directory.appendingPathComponent("server-key.pem").path
        configuration.database = directory.appendingPathComponent("sigillo.sqlite").path
        configuration.caCertificate = directory.appendingPathComponent("ca.pem").path
        configuration.caChain = directory.appendingPathComponent("ca-chain.pem").path
        configuration.outboxFile = directory.appendingPathComponent("outbox.jsonl").path
        configuration.mailFile = directory.appendingPathComponent("mail.jsonl").path
        if let mailRelayPort {
            var smtp = SMTPSettings(host: "127.0.0.1")
            smtp.port = mailRelayPort
            smtp.tls = .none
            smtp.from = "firma@sigillo.example"
            configuration.smtp = smtp
        }
        let name = try DistinguishedName { CountryName("IT"); OrganizationName("Sigillo Test"); CommonName("Sigillo Test CA") }
        let ca = offlineRoot
            ? try await QualifiedSignatureTests.issuingCA(token: token, keyID: configuration.caKeyID, name: name, configuration: configuration, in: directory)
            : try await CertificateAuthority.create(token: token, keyID: configuration.caKeyID, name: name, now: Date().addingTimeInterval(-60))
        try ca.certificatePEM.write(toFile: configuration.caCertificate, atomically: true, encoding: .utf8)
        let tsa = try await TimeStampAuthority.create(
            token: token, keyID: configuration.tsaKeyID, ca: ca, name: try DistinguishedName { CountryName("IT"); OrganizationName("Sigillo Test"); CommonName("Sigillo Test TSA") },
            pkiBaseURL: configuration.pkiBaseURL, now: Date().addingTimeInterval(-60), settings: try configuration.timeStampSettings())
        try tsa.certificatePEM.write(toFile: configuration.tsaCertificate, atomically: true, encoding: .utf8)
        var logger = Logger(label: "test-server")
        logger.logLevel = .warning
        // Cheap Argon2 parameters keep the suites fast; production parameters are tested in SigilloDomainTests.
        let services = try await SigilloServices.open(
            configuration: configuration, token: token, clock: clock, passwords: PasswordHasher(parameters: Argon2Parameters(memoryKiB: 1024, iterations: 1, parallelism: 1)), logger: logger)
        return (configuration, services, logger)
    }

    /// Runs `app` until `body` returns, handing it the port the app bound; then shuts `client` down and stops the app.
    static func serve<App: ApplicationProtocol, T: Sendable>(_ app: App, ports: AsyncStream<Int>, client: HTTPClient, _ body: @Sendable (Int) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw ConfigurationError("server did not start") }
            do {
                let result = try await body(port)
                try await client.shutdown()
                group.cancelAll()
                return result
            } catch {
                try? await client.shutdown()
                group.cancelAll()
                throw error
            }
        }
    }
}
