import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import SigilloTestSupport
import Testing

@Suite("Server: TLS listener and health")
struct HealthTests {
    @Test("ready over TLS when the token answers; unknown routes are JSON 404s")
    func readyAndNotFound() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let ready = try await server.client.execute(HTTPClientRequest(url: server.baseURL + "/health/ready"), timeout: .seconds(10))
            #expect(ready.status == .ok)
            let body = String(buffer: try await ready.body.collect(upTo: 1 << 16))
            #expect(body.contains("\"token\":\"ok\""))
            let live = try await server.client.execute(HTTPClientRequest(url: server.baseURL + "/health/live"), timeout: .seconds(10))
            #expect(live.status == .ok)
            let missing = try await server.client.execute(HTTPClientRequest(url: server.baseURL + "/no/such/route"), timeout: .seconds(10))
            #expect(missing.status == .notFound)
            #expect(missing.headers.first(name: "content-type") == "application/json")
            let error = try JSONSerialization.jsonObject(with: Data(buffer: try await missing.body.collect(upTo: 1 << 16))) as? [String: String]
            #expect(error?["error"] == "not_found")
        }
    }

    @Test("not ready when the token pool is gone")
    func notReady() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            fixture.token.close()
            let ready = try await server.client.execute(HTTPClientRequest(url: server.baseURL + "/health/ready"), timeout: .seconds(10))
            #expect(ready.status == .serviceUnavailable)
        }
    }

    @Test("TLS 1.1 and plain HTTP are refused; a client that does not trust the CA is refused")
    func tlsOnly() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let ca = server.directory.appendingPathComponent("tls-ca.pem").path
            // A client that really offers TLS 1.1 (security level 0: Debian's OpenSSL would not offer it otherwise, and would
            // fail alone) gets the server's protocol_version alert; the same client with TLS 1.2 gets in.
            let old = try await TransportTests.handshake(port: server.port, directory: server.directory, ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
            #expect(!old.established && old.output.contains("alert protocol version"), "\(old.output)")
            let control = try await TransportTests.handshake(port: server.port, directory: server.directory, ["-tls1_2", "-cipher", "DEFAULT@SECLEVEL=0"])
            #expect(control.established && control.value("Protocol version") == "TLSv1.2", "\(control.output)")
            let modern = try await runOffPool("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca, "--tlsv1.2", server.baseURL + "/health"])
            #expect(modern.output == "200")
            let plain = try await runOffPool("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(server.port)/health"])
            #expect(plain.output != "200")
            let untrusted = try await runOffPool("curl", ["-s", "-o", "/dev/null", server.baseURL + "/health"])
            #expect(untrusted.status == 60, "curl must refuse an untrusted certificate: \(untrusted.status)")
        }
    }
}
