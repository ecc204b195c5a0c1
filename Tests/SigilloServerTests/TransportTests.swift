import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import SigilloServer
import SigilloTestSupport
import Testing

/// What an HTTPS client sees of an answer: status, headers, and the JSON error code if any.
struct RawAnswer {
    let status: Int
    let headers: HTTPHeaders
    let body: Data
    var hsts: [String] { self.headers["Strict-Transport-Security"] }
    var error: String? { ((try? JSONSerialization.jsonObject(with: self.body)) as? [String: Any])?["error"] as? String }
}

/// What `openssl s_client` got from a listener.
struct Handshake {
    let established: Bool
    let output: String
    /// `Protocol version: TLSv1.2`, `Ciphersuite: ECDHE-ECDSA-AES128-GCM-SHA256` as `-brief` prints them.
    func value(_ name: String) -> String? {
        self.output.split(separator: "\n").first { $0.hasPrefix(name + ": ") }.map { String($0.dropFirst(name.count + 2)) }
    }
}

@Suite("Transport: HSTS on every answer, TLS 1.2 with AEAD suites only")
struct TransportTests {
    static func send(_ client: HTTPClient, _ url: String, method: HTTPMethod = .GET, body: String? = nil, headers: [(String, String)] = []) async throws -> RawAnswer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 1 << 22)
        return RawAnswer(status: Int(response.status.code), headers: response.headers, body: Data(buffer: bytes))
    }

    /// `openssl s_client` against 127.0.0.1:`port`, verifying the server with the test TLS CA; stdin is empty, so it
    /// ends right after the handshake.
    static func handshake(port: Int, directory: URL, _ arguments: [String]) async throws -> Handshake {
        let result = try await runOffPool("openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-brief", "-verify_return_error",
                                                      "-CAfile", directory.appendingPathComponent("tls-ca.pem").path] + arguments, input: Data())
        return Handshake(established: result.status == 0 && result.output.contains("CONNECTION ESTABLISHED"), output: result.output)
    }

    /// The CBC suites the issue found accepted (BoringSSL has no other CBC suite for an ECDSA key); with TLS 1.1, probed
    /// by a client at security level 0, so that it offers them at all.
    static let cbcSuites = ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA"]

    @Test("Strict-Transport-Security on a 200, a JSON 401, an unknown route, a 413, a web page and the admin listener")
    func hstsEverywhere() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            let server = admin.server
            let expected = ["max-age=31536000"]
            let ready = try await Self.send(server.client, server.baseURL + "/health/ready")
            #expect(ready.status == 200 && ready.hsts == expected)
            let unauthorized = try await Self.send(server.client, server.baseURL + "/csc/v1/credentials/list", method: .POST, body: "{}")
            #expect(unauthorized.status == 401 && unauthorized.error == "invalid_token" && unauthorized.hsts == expected)
            let wrongLogin = try await Self.send(server.client, server.baseURL + "/csc/v1/auth/login", method: .POST, body: "{}",
                                                 headers: [("Authorization", "Basic " + Data("nobody:wrong".utf8).base64EncodedString())])
            #expect(wrongLogin.status == 401 && wrongLogin.hsts == expected)
            let unknown = try await Self.send(server.client, server.baseURL + "/no/such/route")
            #expect(unknown.status == 404 && unknown.error == "not_found" && unknown.hsts == expected)
            let wrongMethod = try await Self.send(server.client, server.baseURL + "/csc/v1/info", method: .DELETE)
            #expect(wrongMethod.status >= 400 && wrongMethod.hsts == expected)
            let huge = try await Self.send(server.client, server.baseURL + "/activation/v1/begin", method: .POST,
                                           body: #"{"code": ""# + String(repeating: "A", count: 100_000) + #"", "device": "totp"}"#)
            #expect(huge.status == 413 && huge.hsts == expected)
            let page = try await Self.send(server.client, server.baseURL + "/")
            #expect(page.status == 200 && page.headers["Content-Type"].first?.hasPrefix("text/html") == true && page.hsts == expected)
            let pki = try await Self.send(server.client, server.baseURL + "/ocsp", method: .POST, body: "not DER")
            #expect(pki.hsts == expected, "\(pki.status)")

            let whoami = try await Self.send(admin.client, admin.baseURL + "/admin/v1/whoami")
            #expect(whoami.status == 200 && whoami.hsts == expected)
            let adminUnknown = try await Self.send(admin.client, admin.baseURL + "/admin/v1/no-such-thing")
            #expect(adminUnknown.status == 404 && adminUnknown.hsts == expected)
        }
    }

    @Test("Both listeners refuse TLS 1.0, 1.1 and every CBC suite, and accept TLS 1.2 with AES-GCM or ChaCha20-Poly1305, and TLS 1.3")
    func protocolsAndSuites() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            let directory = admin.directory
            let operatorCertificate = ["-cert", directory.appendingPathComponent("operator.pem").path, "-key", directory.appendingPathComponent("operator-key.pem").path]
            for (port, client) in [(admin.server.port, [String]()), (admin.port, operatorCertificate)] {
                for suite in Self.cbcSuites {
                    let refused = try await Self.handshake(port: port, directory: directory, client + ["-tls1_2", "-cipher", suite + ":@SECLEVEL=0"])
                    #expect(!refused.established, "port \(port) accepted \(suite): \(refused.output)")
                }
                for version in ["-tls1", "-tls1_1"] {
                    let old = try await Self.handshake(port: port, directory: directory, client + [version, "-cipher", "ALL:@SECLEVEL=0"])
                    #expect(!old.established, "port \(port) accepted \(version): \(old.output)")
                }
                for suite in ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"] {
                    let accepted = try await Self.handshake(port: port, directory: directory, client + ["-tls1_2", "-cipher", suite])
                    #expect(accepted.established && accepted.value("Ciphersuite") == suite && accepted.value("Protocol version") == "TLSv1.2",
                            "port \(port), \(suite): \(accepted.output)")
                }
                let modern = try await Self.handshake(port: port, directory: directory, client + ["-tls1_3"])
                #expect(modern.established && modern.value("Protocol version") == "TLSv1.3", "port \(port): \(modern.output)")
                // Offered everything, the client gets an AEAD suite.
                let any = try await Self.handshake(port: port, directory: directory, client + ["-tls1_2", "-cipher", "ALL:@SECLEVEL=0"])
                #expect(any.established && (any.value("Ciphersuite")?.contains("GCM") == true || any.value("Ciphersuite")?.contains("CHACHA20") == true),
                        "port \(port): \(any.output)")
            }
        }
    }

    @Test("The probes can fail: a listener with NIOSSL's defaults (what the server had) accepts the CBC suites and TLS 1.1")
    func probesSeeTheOldSettings() async throws {
        let fixture = try TestToken()
        let directory = fixture.directory.appendingPathComponent("control")
        try LiveServer.makeCertificates(in: directory)
        let chain = try NIOSSLCertificate.fromPEMFile(directory.appendingPathComponent("server.pem").path).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: directory.appendingPathComponent("server-key.pem").path, format: .pem)
        let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(router: Router(), server: try .tls(.http1(), tlsConfiguration: tls),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: { channel in
                                  continuation.yield(channel.localAddress?.port ?? 0)
                                  continuation.finish()
                              }, logger: Logger(label: "control"))
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        try await LiveServer.serve(app, ports: ports, client: client) { port in
            for suite in Self.cbcSuites {
                let accepted = try await Self.handshake(port: port, directory: directory, ["-tls1_2", "-cipher", suite + ":@SECLEVEL=0"])
                #expect(accepted.established && accepted.value("Ciphersuite") == suite, "\(suite): \(accepted.output)")
            }
            let old = try await Self.handshake(port: port, directory: directory, ["-tls1_1", "-cipher", "ALL:@SECLEVEL=0"])
            #expect(old.established && old.value("Protocol version") == "TLSv1.1", "\(old.output)")
        }
    }
}
