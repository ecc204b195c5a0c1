import Crypto
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import CSCClient
import CSCProtocol
import SigilloDomain
import SigilloMail
import SigilloCMS
import SigilloPKI
import SigilloSQLite
import SigilloServer
import SigilloTestSupport
import SwiftASN1
import Synchronization
import Testing
import X509

/// A digest computed elsewhere, for swift-crypto's "sign this digest" entry point.
private struct PrecomputedSHA256: Digest {
    static let byteCount = 32
    let bytes: [UInt8]

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try self.bytes.withUnsafeBytes(body)
    }
}

/// Requests seen by the stub.
private final class Recorder: Sendable {
    private let bodies = Mutex<[[String: any Sendable]]>([])

    func append(_ body: [String: any Sendable]) { self.bodies.withLock { $0.append(body) } }

    var all: [[String: any Sendable]] { self.bodies.withLock { $0 } }
}

/// A tiny CSC v1 service over TLS: one user, one P-256 credential signing with a local key. Just enough to
/// check what the client sends and how it reads answers and errors.
private struct StubCSCService: Sendable {
    static let username = "mario"
    static let password = "correct horse"
    static let otp = "123456"
    static let token = "stub-token"
    static let credentialID = "cred-1"

    /// The signing key, kept as bytes (swift-crypto keys are not `Sendable` on Linux).
    let keyBytes: Data
    var key: P256.Signing.PrivateKey { try! P256.Signing.PrivateKey(rawRepresentation: self.keyBytes) }
    let certificateDER: [UInt8]
    let certificatePEM: String
    /// Every authorize request body, for the test to inspect.
    let authorizeBodies = Recorder()
    let multisign: Int

    init(multisign: Int) throws {
        self.multisign = multisign
        let key = P256.Signing.PrivateKey()
        self.keyBytes = key.rawRepresentation
        let name = try DistinguishedName { CommonName("Stub Signer") }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: Date() - 3600, notValidAfter: Date() + 3600, issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { Critical(KeyUsage(digitalSignature: true, nonRepudiation: true)) },
            issuerPrivateKey: Certificate.PrivateKey(key))
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        self.certificateDER = serializer.serializedBytes
        self.certificatePEM = try certificate.serializeAsPEM().pemString
    }

    static func json(_ object: [String: Any], status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONSerialization.data(withJSONObject: object)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ code: String, _ description: String, status: HTTPResponse.Status = .badRequest) throws -> Response {
        try self.json(["error": code, "error_description": description], status: status)
    }

    static func body(_ request: Request) async throws -> [String: Any] {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        return try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any] ?? [:]
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        let bearer = "Bearer \(Self.token)"
        router.post("/csc/v1/auth/login") { request, _ -> Response in
            let expected = "Basic " + Data("\(Self.username):\(Self.password)".utf8).base64EncodedString()
            guard request.headers[.authorization] == expected else {
                return try Self.error("authentication_error", "An error occurred during user authentication", status: .unauthorized)
            }
            return try Self.json(["access_token": Self.token, "expires_in": 3600])
        }
        router.post("/csc/v1/credentials/list") { request, _ -> Response in
            guard request.headers[.authorization] == bearer else { return try Self.error("invalid_token", "bad token", status: .unauthorized) }
            return try Self.json(["credentialIDs": [Self.credentialID]])
        }
        router.post("/csc/v1/credentials/info") { request, _ -> Response in
            guard request.headers[.authorization] == bearer else { return try Self.error("invalid_token", "bad token", status: .unauthorized) }
            let body = try await Self.body(request)
            guard body["credentialID"] as? String == Self.credentialID, body["certificates"] as? String == "chain",
                body["certInfo"] as? Bool == true, body["authInfo"] as? Bool == true
            else { return try Self.error("invalid_request", "bad info request") }
            return try Self.json([
                "key": ["status": "enabled", "algo": ["1.2.840.10045.4.3.2", "1.2.840.10045.2.1"], "len": 256, "curve": "1.2.840.10045.3.1.7"],
                "cert": ["status": "valid", "certificates": [Data(self.certificateDER).base64EncodedString()]],
                "authMode": "explicit", "PIN": ["presence": "true"], "OTP": ["presence": "true", "type": "offline"],
                "SCAL": "2", "multisign": self.multisign,
            ])
        }
        router.post("/csc/v1/credentials/authorize") { request, _ -> Response in
            guard request.headers[.authorization] == bearer else { return try Self.error("invalid_token", "bad token", status: .unauthorized) }
            let body = try await Self.body(request)
            let hashes = body["hash"] as? [String] ?? []
            self.authorizeBodies.append(["numSignatures": body["numSignatures"] as? Int ?? -1, "hash": hashes])
            guard body["PIN"] as? String == Self.password else { return try Self.error("invalid_pin", "The PIN is invalid") }
            guard body["OTP"] as? String == Self.otp else { return try Self.error("invalid_otp", "The OTP is invalid") }
            guard hashes.count == body["numSignatures"] as? Int, hashes.count <= self.multisign else {
                return try Self.error("invalid_request", "Numbers of signatures is too high")
            }
            return try Self.json(["SAD": "sad:" + hashes.joined(separator: ","), "expiresIn": 300])
        }
        router.post("/csc/v1/signatures/signHash") { request, _ -> Response in
            guard request.headers[.authorization] == bearer else { return try Self.error("invalid_token", "bad token", status: .unauthorized) }
            let body = try await Self.body(request)
            let hashes = body["hash"] as? [String] ?? []
            guard body["SAD"] as? String == "sad:" + hashes.joined(separator: ","), body["credentialID"] as? String == Self.credentialID
            else { return try Self.error("invalid_request", "Invalid SAD") }
            guard body["hashAlgo"] as? String == "2.16.840.1.101.3.4.2.1", body["signAlgo"] as? String == "1.2.840.10045.4.3.2" else {
                return try Self.error("invalid_request", "unexpected algorithms")
            }
            let signatures = try hashes.map { text -> String in
                let digest = Array(Data(base64Encoded: text)!)
                return try self.key.signature(for: PrecomputedSHA256(bytes: digest)).derRepresentation.base64EncodedString()
            }
            return try Self.json(["signatures": signatures])
        }
        return router
    }

    /// Serves over TLS on a loopback port and runs `body` with the base URL and the TLS CA file.
    func with(directory: URL, _ body: @Sendable (_ baseURL: String, _ ca: String) async throws -> Void) async throws {
        try LiveServer.makeCertificates(in: directory)
        let tls = try SigilloApplication.tlsConfiguration(
            certificate: directory.appendingPathComponent("server.pem").path,
            key: directory.appendingPathComponent("server-key.pem").path)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "stub-csc")
        logger.logLevel = .warning
        let app = Application(
            router: self.router(),
            server: try .tls(.http1(), tlsConfiguration: tls),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw ConfigurationError("stub did not start") }
            do {
                try await body("https://127.0.0.1:\(port)", directory.appendingPathComponent("tls-ca.pem").path)
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
        }
    }
}

@Suite("CSC client against a stub service")
struct CSCClientTests {
    @Test("login, list, info, one authorization, signHash, then a CAdES signature openssl verifies")
    func fullFlow() async throws {
        let directory = try TestHSM.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let stub = try StubCSCService(multisign: 10)
        try await stub.with(directory: directory.appendingPathComponent("tls")) { baseURL, ca in
            let client = try CSCClient(baseURL: baseURL + "/", trustRootsPEMFile: ca)
            do {
                let token = try await client.login(username: StubCSCService.username, password: StubCSCService.password)
                #expect(token.accessToken == StubCSCService.token)
                #expect(token.expiresIn == 3600)
                #expect(try await client.listCredentials() == [StubCSCService.credentialID])
                let info = try await client.credentialInfo(credentialID: StubCSCService.credentialID)
                #expect(info.certificates == [stub.certificateDER])
                #expect(info.multisign == 10)
                #expect(info.keyStatus == "enabled" && info.certificateStatus == "valid")
                #expect(info.keyAlgorithms.contains("1.2.840.10045.4.3.2"))
                #expect(info.otpPresence == "true" && info.scal == "2")

                // Three files, one authorization.
                let builder = try CAdESBuilder(signerCertificate: info.certificates[0], chain: Array(info.certificates.dropFirst()))
                var files: [String] = []
                for index in 0..<3 {
                    let path = directory.appendingPathComponent("file-\(index).txt").path
                    try Data("document \(index)\n".utf8).write(to: URL(fileURLWithPath: path))
                    files.append(path)
                }
                let digests = try await FileHasher().hash(files: files)
                let prepared = try digests.map { try builder.prepare(contentDigest: $0) }
                let hashes = prepared.map(\.digestToSign)
                let sad = try await client.authorize(
                    credentialID: StubCSCService.credentialID, hashes: hashes, pin: StubCSCService.password, otp: StubCSCService.otp)
                #expect(sad.expiresIn == 300)
                let signatures = try await client.signHash(
                    credentialID: StubCSCService.credentialID, sad: sad.sad, hashes: hashes,
                    hashAlgorithmOID: builder.digestAlgorithmOID, signAlgorithmOID: builder.signatureAlgorithmOID)
                #expect(signatures.count == 3)
                let sent = stub.authorizeBodies.all
                #expect(sent.count == 1)
                #expect(sent.first?["numSignatures"] as? Int == 3)
                #expect(sent.first?["hash"] as? [String] == hashes.map { Data($0).base64EncodedString() })

                let anchor = directory.appendingPathComponent("signer.pem").path
                try Data(stub.certificatePEM.utf8).write(to: URL(fileURLWithPath: anchor))
                for (index, file) in files.enumerated() {
                    let p7s = file + ".p7s"
                    try Data(try prepared[index].finish(signature: signatures[index])).write(to: URL(fileURLWithPath: p7s))
                    let verified = try run("openssl", [
                        "cms", "-verify", "-binary", "-content", file, "-in", p7s, "-inform", "DER",
                        "-CAfile", anchor, "-purpose", "any", "-out", "/dev/null",
                    ])
                    #expect(verified.status == 0, "\(verified.output)")
                }
                try await client.shutdown()
            } catch {
                try? await client.shutdown()
                throw error
            }
        }
    }

    @Test("CSC errors surface with their code and description; untrusted servers are refused")
    func errors() async throws {
        let directory = try TestHSM.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let stub = try StubCSCService(multisign: 1)
        try await stub.with(directory: directory.appendingPathComponent("tls")) { baseURL, ca in
            let client = try CSCClient(baseURL: baseURL, trustRootsPEMFile: ca)
            do {
                // Calls before login fail locally.
                await #expect(throws: CSCClientError.self) { try await client.listCredentials() }

                let badLogin = await #expect(throws: CSCClientError.self) {
                    try await client.login(username: StubCSCService.username, password: "wrong")
                }
                #expect(badLogin?.status == 401)
                #expect(badLogin?.error == "authentication_error")
                #expect(badLogin?.method == "auth/login")

                try await client.login(username: StubCSCService.username, password: StubCSCService.password)
                let badOTP = await #expect(throws: CSCClientError.self) {
                    try await client.authorize(
                        credentialID: StubCSCService.credentialID, hashes: [[UInt8](repeating: 1, count: 32)],
                        pin: StubCSCService.password, otp: "000000")
                }
                #expect(badOTP?.status == 400)
                #expect(badOTP?.error == "invalid_otp")
                #expect(badOTP?.errorDescription == "The OTP is invalid")
                #expect(badOTP?.description == "credentials/authorize: invalid_otp (HTTP 400): The OTP is invalid")

                let tooMany = await #expect(throws: CSCClientError.self) {
                    try await client.authorize(
                        credentialID: StubCSCService.credentialID,
                        hashes: [[UInt8](repeating: 1, count: 32), [UInt8](repeating: 2, count: 32)],
                        pin: StubCSCService.password, otp: StubCSCService.otp)
                }
                #expect(tooMany?.errorDescription == "Numbers of signatures is too high")
                try await client.shutdown()
            } catch {
                try? await client.shutdown()
                throw error
            }

            // A client trusting another CA (the system store here) does not talk to the stub.
            let untrusting = try CSCClient(baseURL: baseURL, trustRootsPEMFile: nil)
            let refused = await #expect(throws: CSCClientError.self) {
                try await untrusting.login(username: StubCSCService.username, password: StubCSCService.password)
            }
            #expect(refused?.error == "transport_error")
            #expect(refused?.errorDescription?.contains("CERTIFICATE_VERIFY_FAILED") == true, "\(String(describing: refused))")
            #expect(refused?.errorDescription?.contains("TLS handshake") == true, "\(String(describing: refused))")
            try await untrusting.shutdown()
        }
        // Plain http is refused before any connection.
        #expect(throws: CSCClientError.self) { try CSCClient(baseURL: "http://127.0.0.1:8443", trustRootsPEMFile: nil) }
        #expect(throws: CSCClientError.self) {
            try CSCClient(baseURL: "https://127.0.0.1:8443", trustRootsPEMFile: directory.appendingPathComponent("missing.pem").path)
        }
    }

    /// The `sigillo` executable built next to the tests (`swift build --build-tests`).
    static var sigilloBinary: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/sigillo").path
    }

    /// `run(...)` on its own thread, so the in-process stub keeps the cooperative pool.
    static func runOffPool(_ arguments: [String], input: String) async throws -> (status: Int32, output: String) {
        try await SigilloTestSupport.runOffPool(self.sigilloBinary, arguments, input: Data(input.utf8))
    }

    @Test("sigillo sign: 3 files with multisign 2 make 2 authorizations (one OTP line each); --hash prints a signature")
    func commandLine() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.sigilloBinary), "build sigillo first")
        let directory = try TestHSM.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let stub = try StubCSCService(multisign: 2)
        let output = directory.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let files = try (0..<3).map { index -> String in
            let path = directory.appendingPathComponent("doc-\(index).txt").path
            try Data(String(repeating: "line \(index)\n", count: 1000 * (index + 1)).utf8).write(to: URL(fileURLWithPath: path))
            return path
        }
        let anchor = directory.appendingPathComponent("signer.pem").path
        try Data(stub.certificatePEM.utf8).write(to: URL(fileURLWithPath: anchor))

        try await stub.with(directory: directory.appendingPathComponent("tls")) { baseURL, ca in
            let common = ["--server", baseURL, "--ca", ca, "--username", StubCSCService.username, "--password-stdin"]
            let signed = try await Self.runOffPool(
                ["sign"] + files + common + ["--output-dir", output.path],
                input: "\(StubCSCService.password)\n\(StubCSCService.otp)\n\(StubCSCService.otp)\n")
            #expect(signed.status == 0, "\(signed.output)")
            let rounds = stub.authorizeBodies.all.map { $0["numSignatures"] as? Int }
            #expect(rounds == [2, 1])
            for file in files {
                let p7s = output.appendingPathComponent(URL(fileURLWithPath: file).lastPathComponent + ".p7s").path
                let verified = try run("openssl", [
                    "cms", "-verify", "-binary", "-content", file, "-in", p7s, "-inform", "DER",
                    "-CAfile", anchor, "-purpose", "any", "-out", "/dev/null",
                ])
                #expect(verified.status == 0, "\(verified.output)")
            }

            // A second authorization without its OTP line fails clearly, and writes nothing for that group.
            let short = try await Self.runOffPool(["sign"] + files + common, input: "\(StubCSCService.password)\n\(StubCSCService.otp)\n")
            #expect(short.status != 0)
            #expect(short.output.contains("no OTP line for authorization 2 of 2"), "\(short.output)")
            #expect(!FileManager.default.fileExists(atPath: files[2] + ".p7s"))

            // A wrong OTP: the service's error code and description reach the user.
            let wrong = try await Self.runOffPool(["sign", files[0]] + common, input: "\(StubCSCService.password)\n000000\n")
            #expect(wrong.status != 0)
            #expect(wrong.output.contains("invalid_otp") && wrong.output.contains("The OTP is invalid"), "\(wrong.output)")

            // A raw digest.
            let digest = Array(SHA256.hash(data: Data("raw".utf8)))
            let hex = digest.map { String(format: "%02x", $0) }.joined()
            let raw = try await Self.runOffPool(["sign", "--hash", hex] + common, input: "\(StubCSCService.password)\n\(StubCSCService.otp)\n")
            #expect(raw.status == 0, "\(raw.output)")
            let base64 = raw.output.split(separator: "\n").last.map(String.init) ?? ""
            let signature = try P256.Signing.ECDSASignature(derRepresentation: try #require(Data(base64Encoded: base64)))
            #expect(stub.key.publicKey.isValidSignature(signature, for: PrecomputedSHA256(bytes: digest)))
        }
    }
}
