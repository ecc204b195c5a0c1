import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import SigilloDomain
import SigilloServer
import SigilloTestSupport

/// A JSON answer of the admin API.
struct AdminResponse {
    let status: Int
    let data: Data
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: self.data)) as? [String: Any] ?? [:] }
    var error: String? { self.json["error"] as? String }
}

/// The public server (`LiveServer`) plus the mutual-TLS admin listener on another loopback port, sharing its
/// services, and an HTTPS client holding the operator certificate made by `certs/dev-certs.sh`.
struct AdminServer {
    let server: LiveServer
    let port: Int
    let client: HTTPClient
    var baseURL: String { "https://127.0.0.1:\(self.port)" }
    var directory: URL { self.server.directory }
    var databasePath: String { self.directory.appendingPathComponent("sigillo.sqlite").path }

    /// A client trusting the dev TLS CA, presenting `certificate`/`key` when given.
    static func client(directory: URL, certificate: String? = nil, key: String? = nil) throws -> HTTPClient {
        var tls = LiveServer.clientTLS(trusting: directory.appendingPathComponent("tls-ca.pem").path)
        if let certificate, let key {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }

    /// - Parameter clock: the services' clock (a `TestClock`'s, for dates the test controls).
    /// - Parameter pki: also run the publication listener (`LiveServer.with`'s `pki`).
    static func with<T: Sendable>(_ fixture: TestToken, clock: ServiceClock = .system, holderKeys: HolderKeyStorage? = nil, pki: Bool = false,
                                  _ body: @Sendable (AdminServer) async throws -> T) async throws -> T {
        try await LiveServer.with(fixture, clock: clock, pki: pki, holderKeys: holderKeys) { server in
            let directory = server.directory
            var configuration = ServerConfiguration()
            configuration.adminPort = 0
            configuration.tlsCertificate = directory.appendingPathComponent("server.pem").path
            configuration.tlsKey = directory.appendingPathComponent("server-key.pem").path
            configuration.adminCA = directory.appendingPathComponent("admin-ca.pem").path
            var logger = Logger(label: "test-admin")
            logger.logLevel = .warning
            let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
            let app = try AdminApplication.make(configuration: configuration, services: server.services, logger: logger) { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            }
            let client = try self.client(
                directory: directory, certificate: directory.appendingPathComponent("operator.pem").path, key: directory.appendingPathComponent("operator-key.pem").path)
            return try await LiveServer.serve(app, ports: portStream, client: client) { port in
                try await body(AdminServer(server: server, port: port, client: client))
            }
        }
    }

    /// Sends a request to `/admin/v1/<path>` with `client` (the operator's by default).
    func request(_ method: HTTPMethod, _ path: String, _ body: [String: Any]? = nil, client: HTTPClient? = nil) async throws -> AdminResponse {
        var request = HTTPClientRequest(url: self.baseURL + "/admin/v1/" + path)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        }
        let response = try await (client ?? self.client).execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 1 << 24)
        return AdminResponse(status: Int(response.status.code), data: Data(buffer: bytes))
    }

    /// Runs SQL on the database file with the sqlite3 tool, as an attacker with file access would.
    func tamper(_ sql: String) throws {
        let result = try run("sqlite3", [self.databasePath, sql])
        guard result.status == 0 else { throw ConfigurationError("sqlite3 failed: \(result.output)") }
    }
}

