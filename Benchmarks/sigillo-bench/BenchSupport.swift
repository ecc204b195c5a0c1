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
import SigilloSQLite
import SigilloServer
import SwiftASN1
import Synchronization
import X509

/// The bench's SoftHSM folder: SoftHSM reads its configuration once per process, so one folder and one
/// configuration for the whole run, and one token (label) per use in it.
enum BenchHSMRoot {
    static let root: URL = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("sigillo-bench-\(getpid())")
        try? FileManager.default.createDirectory(at: root.appendingPathComponent("tokens"), withIntermediateDirectories: true)
        let conf = root.appendingPathComponent("softhsm2.conf")
        try? Data("directories.tokendir = \(root.appendingPathComponent("tokens").path)\nobjectstore.backend = file\nlog.level = ERROR\n".utf8).write(to: conf)
        setenv("SOFTHSM2_CONF", conf.path, 1)
        return root
    }()

    /// A fresh token `label` with random PINs; the user PIN is in a mode-600 file next to it.
    static func makeToken(label: String, module: String, sessions: Int = 2) throws -> TokenConfiguration {
        let folder = self.root.appendingPathComponent(label)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let pin = UUID().uuidString
        let pinFile = folder.appendingPathComponent("user.pin")
        _ = FileManager.default.createFile(atPath: pinFile.path, contents: Data(pin.utf8), attributes: [.posixPermissions: 0o600])
        _ = try PKCS11Module.load(path: module).initializeToken(label: label, soPIN: UUID().uuidString, userPIN: pin)
        return TokenConfiguration(modulePath: module, tokenLabel: label, pin: .file(pinFile.path), sessions: sessions)
    }

    static func remove() {
        try? FileManager.default.removeItem(at: self.root)
    }
}

/// A benchmark holder: an activated account with a hardware (HOTP) token whose seed the bench knows, so
/// each client can compute its next code (TOTP codes are accepted once per time step: useless at load).
final class BenchAccount: Sendable {
    let username: String
    let password: String
    let secret: [UInt8]
    let credential: Credential
    private let counter = Mutex<UInt64>(1)

    init(username: String, password: String, secret: [UInt8], credential: Credential) {
        self.username = username
        self.password = password
        self.secret = secret
        self.credential = credential
    }

    /// The code the hardware token shows next.
    func nextOTP() -> String {
        self.counter.withLock { counter in
            defer { counter += 1 }
            return HOTP.code(secret: self.secret, counter: counter)
        }
    }

    /// `signAlgo` for signHash.
    var signAlgorithmOID: String { self.credential.keyAlgorithm.isRSA ? OID.sha256WithRSA : OID.ecdsaSHA256 }

    /// Checks signatures of `messages` (each signed as SHA-256(message)) against the certificate's key.
    func verify(_ signatures: [[UInt8]], messages: [[UInt8]]) -> Bool {
        guard signatures.count == messages.count, let certificate = try? Certificate(derEncoded: self.credential.certificateDER) else { return false }
        if self.credential.keyAlgorithm.isRSA {
            guard let key = _RSA.Signing.PublicKey(certificate.publicKey) else { return false }
            return zip(signatures, messages).allSatisfy { key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: $0), for: $1, padding: .insecurePKCS1v1_5) }
        }
        guard let key = P256.Signing.PublicKey(certificate.publicKey) else { return false }
        return zip(signatures, messages).allSatisfy { signature, message in
            guard let ecdsa = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(ecdsa, for: message)
        }
    }
}

/// Self-made TLS certificates for the bench server: a CA (`tls-ca.pem`, which clients trust) and a server
/// certificate for 127.0.0.1 (`server.pem`, `server-key.pem`), valid for a week.
enum BenchTLS {
    static func write(to directory: URL) throws {
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { OrganizationName("Sigillo Bench"); CommonName("Sigillo Bench TLS CA") }
        let now = Date()
        let ca = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(caKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(7 * 86_400), issuer: caName, subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true))
            },
            issuerPrivateKey: .init(caKey))
        let serverKey = P256.Signing.PrivateKey()
        let server = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(serverKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(7 * 86_400), issuer: caName,
            subject: try DistinguishedName { OrganizationName("Sigillo Bench"); CommonName("127.0.0.1") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])), .dnsName("localhost")])
            },
            issuerPrivateKey: .init(caKey))
        try ca.serializeAsPEM().pemString.write(to: directory.appendingPathComponent("tls-ca.pem"), atomically: true, encoding: .utf8)
        try server.serializeAsPEM().pemString.write(to: directory.appendingPathComponent("server.pem"), atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("server-key.pem").path, contents: Data(serverKey.pemRepresentation.utf8),
                                       attributes: [.posixPermissions: 0o600])
    }
}

/// `body`, tried up to `attempts` times (the last error is thrown).
func retrying<T>(attempts: Int = 3, _ body: () async throws -> T) async throws -> T {
    for _ in 1..<max(1, attempts) {
        if let result = try? await body() { return result }
    }
    return try await body()
}

/// Runs blocking work on a thread of its own, off the cooperative pool.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Latency percentiles in milliseconds, from an HdrHistogram of microseconds.
struct LatencySummary: Codable, Sendable {
    var count: UInt64
    var p50: Double
    var p90: Double
    var p99: Double
    var max: Double

    init(_ histogram: Histogram<UInt64>) {
        func ms(_ micros: UInt64) -> Double { (Double(micros) / 10).rounded() / 100 }
        self.count = histogram.totalCount
        self.p50 = histogram.totalCount == 0 ? 0 : ms(histogram.valueAtPercentile(50))
        self.p90 = histogram.totalCount == 0 ? 0 : ms(histogram.valueAtPercentile(90))
        self.p99 = histogram.totalCount == 0 ? 0 : ms(histogram.valueAtPercentile(99))
        self.max = histogram.totalCount == 0 ? 0 : ms(histogram.max)
    }
}
