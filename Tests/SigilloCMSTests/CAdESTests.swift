import Crypto
import CSCClient
import Foundation
import PKCS11
import SigilloCMS
import SigilloTestSupport
import SwiftASN1
import Testing
import X509
import _CryptoExtras

/// A digest computed elsewhere, handed to swift-crypto's "sign this digest" entry points.
struct PrecomputedSHA256: Digest {
    static let byteCount = 32
    let bytes: [UInt8]

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try self.bytes.withUnsafeBytes(body)
    }
}

/// A throw-away CA and a leaf certificate for a given key, in a fresh folder.
struct CAdESFixture {
    let directory: URL
    let caPEMPath: String
    let caDER: [UInt8]
    let leafDER: [UInt8]

    init(leafKey: Certificate.PrivateKey) throws {
        self.directory = try TestHSM.makeTemporaryDirectory()
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName {
            CountryName("IT")
            OrganizationName("Sigillo Test")
            CommonName("CAdES Test CA")
        }
        let now = Date()
        let ca = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(caKey.publicKey),
            notValidBefore: now - 3600,
            notValidAfter: now + 86400,
            issuer: caName,
            subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: Certificate.PrivateKey(caKey)
        )
        // A serial number with the high bit set: its DER INTEGER needs a leading zero byte.
        let leaf = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(bytes: [0x9A, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]),
            publicKey: leafKey.publicKey,
            notValidBefore: now - 3600,
            notValidAfter: now + 86400,
            issuer: caName,
            subject: try DistinguishedName {
                CountryName("IT")
                CommonName("Mario Rossi")
            },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, nonRepudiation: true))
            },
            issuerPrivateKey: Certificate.PrivateKey(caKey)
        )
        self.caDER = try Self.der(ca)
        self.leafDER = try Self.der(leaf)
        self.caPEMPath = self.directory.appendingPathComponent("ca.pem").path
        try Data(try ca.serializeAsPEM().pemString.utf8).write(to: URL(fileURLWithPath: self.caPEMPath))
    }

    static func der(_ certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    /// Writes a file of `size` random bytes and returns its path.
    func document(_ name: String, size: Int = 100_000) throws -> String {
        let path = self.directory.appendingPathComponent(name).path
        var generator = SystemRandomNumberGenerator()
        try Data((0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: URL(fileURLWithPath: path))
        return path
    }

    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = self.directory.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// `openssl cms -verify` of a detached signature.
    func verify(content: String, signature: String) throws -> (status: Int32, output: String) {
        try run("openssl", [
            "cms", "-verify", "-binary", "-content", content, "-in", signature, "-inform", "DER",
            "-CAfile", self.caPEMPath, "-purpose", "any", "-out", "/dev/null",
        ])
    }

    /// Flips one byte of the file in place.
    func tamper(_ path: String) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count / 2] ^= 0x01
        try data.write(to: URL(fileURLWithPath: path))
    }
}

@Suite("CAdES-BES detached signatures")
struct CAdESTests {
    @Test("ECDSA P-256 / SHA-256 through the async sign closure: openssl verifies, tampering is detected")
    func ecdsaP256() async throws {
        let key = P256.Signing.PrivateKey()
        let fixture = try CAdESFixture(leafKey: Certificate.PrivateKey(key))
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        let document = try fixture.document("contract.pdf")
        let digest = try await FileHasher(algorithm: .sha256).hash(file: document)

        let builder = try CAdESBuilder(signerCertificate: fixture.leafDER, chain: [fixture.leafDER, fixture.caDER], digestAlgorithm: .sha256)
        #expect(builder.signatureAlgorithmOID == "1.2.840.10045.4.3.2")
        #expect(builder.digestAlgorithmOID == "2.16.840.1.101.3.4.2.1")
        #expect(builder.certificates == [fixture.leafDER, fixture.caDER])
        let signingTime = Date(timeIntervalSince1970: 1_795_000_000)  // 2026-11-18T11:06:40Z
        let p7s = try await builder.sign(contentDigest: digest, signingTime: signingTime) { toSign in
            #expect(toSign.count == 32)
            return Array(try key.signature(for: PrecomputedSHA256(bytes: toSign)).derRepresentation)
        }
        let signature = try fixture.write(p7s, "contract.pdf.p7s")

        let verified = try fixture.verify(content: document, signature: signature)
        #expect(verified.status == 0, "\(verified.output)")
        #expect(verified.output.contains("Verification successful"), "\(verified.output)")

        let printed = try run("openssl", ["cms", "-cmsout", "-print", "-inform", "DER", "-in", signature])
        #expect(printed.status == 0, "\(printed.output)")
        #expect(printed.output.contains("id-smime-aa-signingCertificateV2") || printed.output.contains("1.2.840.113549.1.9.16.2.47"), "\(printed.output)")
        #expect(printed.output.contains("signingTime"), "\(printed.output)")
        #expect(printed.output.contains("UTCTIME:Nov 18 11:06:40 2026"), "\(printed.output)")
        #expect(printed.output.contains("messageDigest"), "\(printed.output)")
        #expect(printed.output.contains("ecdsa-with-SHA256"), "\(printed.output)")
        // Detached: no eContent.
        #expect(printed.output.contains("eContent: <ABSENT>"), "\(printed.output)")

        try fixture.tamper(document)
        let rejected = try fixture.verify(content: document, signature: signature)
        #expect(rejected.status != 0, "a modified file verified: \(rejected.output)")
    }

    @Test("RSA-2048 PKCS#1 v1.5 / SHA-256: openssl verifies, tampering is detected")
    func rsa2048() async throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let fixture = try CAdESFixture(leafKey: Certificate.PrivateKey(key))
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        let document = try fixture.document("invoice.xml", size: 3 * 1024 * 1024 + 5)
        let digest = try await FileHasher(algorithm: .sha256).hash(file: document)

        let builder = try CAdESBuilder(signerCertificate: fixture.leafDER, chain: [fixture.caDER])
        #expect(builder.signatureAlgorithmOID == "1.2.840.113549.1.1.11")
        // swift-crypto's RSA signs only its own digest types: sign the attributes, which it hashes with SHA-256.
        let prepared = try builder.prepare(contentDigest: digest)
        #expect(prepared.digestToSign == Array(SHA256.hash(data: prepared.signedAttributesDER)))
        let rsaSignature = try key.signature(for: Data(prepared.signedAttributesDER), padding: .insecurePKCS1v1_5)
        let p7s = try prepared.finish(signature: Array(rsaSignature.rawRepresentation))
        let signature = try fixture.write(p7s, "invoice.xml.p7s")
        let verified = try fixture.verify(content: document, signature: signature)
        #expect(verified.status == 0, "\(verified.output)")

        let printed = try run("openssl", ["cms", "-cmsout", "-print", "-inform", "DER", "-in", signature])
        #expect(printed.output.contains("rsaEncryption"), "\(printed.output)")
        #expect(printed.output.contains("id-smime-aa-signingCertificateV2") || printed.output.contains("1.2.840.113549.1.9.16.2.47"), "\(printed.output)")

        try fixture.tamper(document)
        let rejected = try fixture.verify(content: document, signature: signature)
        #expect(rejected.status != 0, "a modified file verified: \(rejected.output)")
    }

    @Test("P-384 / SHA-384 in two steps (prepare, then finish with a raw r‖s signature)")
    func preparedThenFinished() async throws {
        let key = P384.Signing.PrivateKey()
        let fixture = try CAdESFixture(leafKey: Certificate.PrivateKey(key))
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        let builder = try CAdESBuilder(signerCertificate: fixture.leafDER, chain: [fixture.caDER], digestAlgorithm: .sha384)
        #expect(builder.signatureAlgorithmOID == "1.2.840.10045.4.3.3")

        // A batch: every file prepared first, then every signature, then every .p7s.
        let documents = try (0..<3).map { try fixture.document("doc-\($0).bin", size: 1000 * ($0 + 1)) }
        let digests = try await FileHasher(algorithm: .sha384).hash(files: documents)
        let prepared = try digests.map { try builder.prepare(contentDigest: $0) }
        for item in prepared {
            #expect(item.signedAttributesDER.first == 0x31, "the signed attributes are hashed as a universal SET")
            #expect(item.digestToSign == Array(SHA384.hash(data: item.signedAttributesDER)))
        }
        let signatures = try prepared.map { Array(try key.signature(for: $0.signedAttributesDER).rawRepresentation) }
        for (index, document) in documents.enumerated() {
            let p7s = try prepared[index].finish(signature: signatures[index])
            let signature = try fixture.write(p7s, "doc-\(index).bin.p7s")
            let verified = try fixture.verify(content: document, signature: signature)
            #expect(verified.status == 0, "\(verified.output)")
        }
        // A signature paired with another file's attributes does not verify.
        let swapped = try fixture.write(try prepared[0].finish(signature: signatures[1]), "swapped.p7s")
        #expect(try fixture.verify(content: documents[0], signature: swapped).status != 0)
    }

    @Test("signing time after 2049 is a GeneralizedTime; wrong digest lengths are refused")
    func timesAndDigests() async throws {
        let key = P256.Signing.PrivateKey()
        let fixture = try CAdESFixture(leafKey: Certificate.PrivateKey(key))
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        let builder = try CAdESBuilder(signerCertificate: fixture.leafDER)
        #expect(throws: CMSError.self) { try builder.prepare(contentDigest: [UInt8](repeating: 1, count: 48)) }

        let late = try builder.prepare(contentDigest: [UInt8](repeating: 7, count: 32), signingTime: Date(timeIntervalSince1970: 2_600_000_000))
        let p7s = try late.finish(signature: Array(try key.signature(for: late.signedAttributesDER).derRepresentation))
        let path = try fixture.write(p7s, "late.p7s")
        let printed = try run("openssl", ["cms", "-cmsout", "-print", "-inform", "DER", "-in", path])
        #expect(printed.output.contains("GENERALIZEDTIME:May 22 14:13:20 2052"), "\(printed.output)")
    }

    @Test("the signer certificate's issuer and serial number are read from its DER")
    func signerCertificate() throws {
        let fixture = try CAdESFixture(leafKey: Certificate.PrivateKey(P256.Signing.PrivateKey()))
        defer { try? FileManager.default.removeItem(at: fixture.directory) }
        let signer = try SignerCertificate(der: fixture.leafDER)
        #expect(signer.keyType == .ec)
        #expect(signer.serialNumberDER == [0x02, 0x09, 0x00, 0x9A, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07])
        let leaf = try Certificate(derEncoded: fixture.leafDER)
        var issuer = DER.Serializer()
        try issuer.serialize(leaf.issuer)
        #expect(signer.issuerDER == issuer.serializedBytes)
        #expect(throws: CMSError.self) { try SignerCertificate(der: [0x30, 0x03, 0x02, 0x01, 0x01]) }
    }
}
