import ArgumentParser
import AsyncHTTPClient
import Foundation
import CSCProtocol
import NIOCore
import NIOHTTP1
import NIOSSL

/// How to reach the admin listener: URL, the operator's certificate and key, and the CA that issued the server's certificate.
struct AdminConnection: ParsableArguments {
    @Option(help: "Admin listener URL (or SIGILLO_ADMIN_URL).")
    var url: String = ProcessInfo.processInfo.environment["SIGILLO_ADMIN_URL"] ?? "https://127.0.0.1:8444"
    @Option(help: "Operator certificate (PEM).")
    var cert: String = ProcessInfo.processInfo.environment["SIGILLO_OPERATOR_CERT"] ?? "certs/operator.pem"
    @Option(help: "Operator private key (PEM).")
    var key: String = ProcessInfo.processInfo.environment["SIGILLO_OPERATOR_KEY"] ?? "certs/operator-key.pem"
    @Option(help: "CA that issued the server's TLS certificate.")
    var ca: String = ProcessInfo.processInfo.environment["SIGILLO_TLS_CA"] ?? "certs/tls-ca.pem"
    @Flag(help: "Print the server's JSON instead of text.")
    var json = false

    /// Sends one request and returns the body of a 2xx answer. - Throws: `ExitCode(1)` after printing the server's error.
    func send(_ method: HTTPMethod, _ path: String, body: (any Encodable)? = nil, raw: Data? = nil, contentType: String = "application/json") async throws -> Data {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.trustRoots = .file(self.ca)
        do {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(self.cert).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: self.key, format: .pem))
        } catch {
            throw ValidationError("cannot read the operator certificate \(self.cert) or key \(self.key): \(error)")
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
        do {
            var request = HTTPClientRequest(url: self.url.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/admin/v1/" + path)
            request.method = method
            if let raw {
                request.headers.add(name: "Content-Type", value: contentType)
                request.body = .bytes(ByteBuffer(bytes: raw))
            } else if let body {
                request.headers.add(name: "Content-Type", value: contentType)
                request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
            } else if method == .POST {
                request.body = .bytes(ByteBuffer())
            }
            let response = try await client.execute(request, timeout: .seconds(60))
            let data = Data((try await response.body.collect(upTo: 1 << 26)).readableBytesView)
            try await client.shutdown()
            guard (200..<300).contains(response.status.code) else {
                if self.json {
                    FileHandle.standardError.write(data + Data("\n".utf8))
                } else {
                    let error = try? JSONDecoder().decode([String: String].self, from: data)
                    FileHandle.standardError.write(Data("error: \(error?["error_description"] ?? "HTTP \(response.status.code)") (\(error?["error"] ?? "\(response.status.code)"))\n".utf8))
                }
                throw ExitCode(1)
            }
            return data
        } catch {
            try? await client.shutdown()
            if error is ExitCode { throw error }
            throw ValidationError("cannot reach the admin listener at \(self.url): \(error)")
        }
    }

    /// Prints `data` as JSON (`--json`) or through `text`.
    func output<T: Decodable>(_ data: Data, as type: T.Type, _ text: (T) -> String) throws {
        if self.json {
            let object = try JSONSerialization.jsonObject(with: data)
            let pretty = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: pretty, as: UTF8.self))
        } else {
            print(text(try JSONDecoder().decode(type, from: data)))
        }
    }
}
