import Crypto
import Foundation
import PKCS11
import SigilloDomain
import SigilloPKI
import SigilloTestSupport
import SwiftASN1
import Testing
import X509

let testTSAName = try! DistinguishedName {
    CountryName("IT")
    OrganizationName("Sigillo Test")
    CommonName("Sigillo Test TSA")
}

/// The test TSA's policy, and one it does not stamp under.
let testTSAPolicy = "1.3.6.1.4.1.59999.1.1"
let otherTSAPolicy = "1.2.3.4.5"

/// A `TimeStampResp` as a relying party reads it.
struct ParsedTimeStampReply {
    var status: Int
    var statusStrings: [String]
    var failureInfo: PKIFailureInfo?
    /// The DER `TimeStampToken`, when granted.
    var token: [UInt8]?

    init(_ der: [UInt8]) throws {
        let root = try DER.parse(der)
        var token: [UInt8]?
        var status = -1
        var strings: [String] = []
        var failureInfo: PKIFailureInfo?
        try DER.sequence(root, identifier: .sequence) { nodes in
            guard let statusInfo = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no PKIStatusInfo") }
            try DER.sequence(statusInfo, identifier: .sequence) { fields in
                guard let statusNode = fields.next() else { throw ASN1Error.invalidASN1Object(reason: "no PKIStatus") }
                status = try Int(derEncoded: statusNode)
                while let field = fields.next() {
                    if field.identifier == .sequence {
                        strings = try DER.sequence(of: ASN1UTF8String.self, identifier: .sequence, rootNode: field).map { String($0) }
                    } else {
                        failureInfo = try PKIFailureInfo(derEncoded: field)
                    }
                }
            }
            token = nodes.next().map { Array($0.encodedBytes) }
            #expect(nodes.next() == nil)
        }
        (self.status, self.statusStrings, self.failureInfo, self.token) = (status, strings, failureInfo, token)
    }

    /// How many certificates the token's `SignedData` carries.
    var certificateCount: Int {
        get throws {
            let token = try #require(self.token)
            let contentInfo = try DER.parse(token)
            guard case .constructed(let parts) = contentInfo.content, let explicit = Array(parts).last,
                  case .constructed(let inner) = explicit.content, let signedData = inner.first(where: { _ in true }),
                  case .constructed(let fields) = signedData.content
            else { throw ASN1Error.invalidASN1Object(reason: "not a ContentInfo") }
            // version, digestAlgorithms, encapContentInfo, [certificates], signerInfos
            let certificates = Array(fields).first { $0.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) }
            guard let certificates, case .constructed(let list) = certificates.content else { return 0 }
            return Array(list).count
        }
    }
}

/// A DER `TimeStampReq` written by hand, for what openssl will not send.
func handMadeQuery(
    version: Int = 1, hashOID: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 1], nullParameters: Bool = true,
    hash: [UInt8] = Array(repeating: 0xAB, count: 32), policy: ASN1ObjectIdentifier? = nil, nonce: [UInt8]? = [0x01, 0x02],
    certReq: Bool = true, extensions: Bool = false, certReqBeforeNonce: Bool = false
) throws -> [UInt8] {
    var serializer = DER.Serializer()
    try serializer.appendConstructedNode(identifier: .sequence) { coder in
        try coder.serialize(version)
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.serialize(hashOID)
                if nullParameters { try coder.serialize(ASN1Null()) }
            }
            try coder.serialize(ASN1OctetString(contentBytes: hash[...]))
        }
        if let policy { try coder.serialize(policy) }
        if certReqBeforeNonce, certReq { try coder.serialize(true) }
        if let nonce { coder.serializeRawBytes([0x02, UInt8(nonce.count)] + nonce) }
        if !certReqBeforeNonce, certReq { try coder.serialize(true) }
        if extensions {
            try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { coder in
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    let oid: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 59999, 9]
                    try coder.serialize(oid)
                    try coder.serialize(ASN1OctetString(contentBytes: [0x05, 0x00]))
                }
            }
        }
    }
    return serializer.serializedBytes
}

@Suite("Time-stamping authority (RFC 3161) in the token")
struct TimeStampAuthorityTests {
    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// The value after `label` on its line of openssl's output.
    static func field(_ label: String, in text: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix(label) }.map { String($0.dropFirst(label.count)).trimmingCharacters(in: .whitespaces) }
    }

    /// A token with a CA and a TSA made at `clock`'s time, and a folder with `ca.pem`, `tsa.pem` and a document.
    struct Setup {
        let fixture: TestToken
        let ca: CertificateAuthority
        let tsa: TimeStampAuthority
        let caPath: String
        let tsaPath: String
        let documentPath: String
        let document: [UInt8]

        init(algorithm: KeyAlgorithm = .ecP256, clock: TestClock, settings: TimeStampAuthority.Settings? = nil) async throws {
            self.fixture = try TestToken()
            self.ca = try await CertificateAuthority.create(token: self.fixture.token, name: testCAName, now: clock.now)
            self.tsa = try await TimeStampAuthority.create(
                token: self.fixture.token, keyID: "sigillo-tsa", algorithm: algorithm, ca: self.ca, name: testTSAName,
                pkiBaseURL: "http://127.0.0.1:8080/", now: clock.now, clock: clock.serviceClock,
                settings: try settings ?? TimeStampAuthority.Settings(policyOID: testTSAPolicy, accuracy: .init(seconds: 1, millis: 500)))
            self.caPath = try write(self.ca.certificatePEM, "ca.pem", in: self.fixture.directory)
            self.tsaPath = try write(self.tsa.certificatePEM, "tsa.pem", in: self.fixture.directory)
            self.document = Array("Relying parties validate without help.\n".utf8) + (0..<64).map { _ in UInt8.random(in: 0...255) }
            self.documentPath = self.fixture.directory.appendingPathComponent("document.bin").path
            try Data(self.document).write(to: URL(fileURLWithPath: self.documentPath))
        }

        func path(_ name: String) -> String {
            self.fixture.directory.appendingPathComponent(name).path
        }

        /// `openssl ts -query` with `options` on the document.
        func query(_ options: [String], name: String) async throws -> [UInt8] {
            let path = self.path(name)
            let made = try await runOffPool("openssl", ["ts", "-query", "-data", self.documentPath] + options + ["-out", path])
            #expect(made.status == 0, "openssl ts -query: \(made.output)")
            return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        }

        func save(_ bytes: [UInt8], _ name: String) throws -> String {
            let path = self.path(name)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }
    }

    /// A clock at a whole second plus 250 ms, so `genTime` has a fraction.
    static func makeClock() -> TestClock {
        TestClock(Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down) + 0.25))
    }

    @Test("openssl queries are granted and the replies verify with openssl ts -verify", arguments: [KeyAlgorithm.ecP256, .ecP384, .rsa2048])
    func grantedRepliesVerify(algorithm: KeyAlgorithm) async throws {
        let clock = Self.makeClock()
        let setup = try await Setup(algorithm: algorithm, clock: clock)
        let cases: [(options: [String], certificates: Bool, nonce: Bool, hash: String)] = [
            (["-sha256", "-cert"], true, true, "sha256"),
            (["-sha256"], false, true, "sha256"),
            (["-sha384", "-cert", "-no_nonce"], true, false, "sha384"),
            (["-sha512", "-cert", "-tspolicy", testTSAPolicy], true, true, "sha512"),
            (["-sha256", "-no_nonce", "-tspolicy", testTSAPolicy], false, false, "sha256"),
        ]
        var serials: Set<String> = []
        for (index, item) in cases.enumerated() {
            let query = try await setup.query(item.options, name: "q\(index).tsq")
            let reply = await setup.tsa.respond(to: query)
            #expect(reply.granted && !reply.busy && reply.failureInfo == nil && reply.retryAfter == nil)
            let parsed = try ParsedTimeStampReply(reply.der)
            #expect(parsed.status == 0 && parsed.failureInfo == nil && parsed.token != nil)
            #expect(try parsed.certificateCount == (item.certificates ? 2 : 0), "TSA certificate and CA certificate when certReq")
            let replyPath = try setup.save(reply.der, "r\(index).tsr")

            let queryText = try await runOffPool("openssl", ["ts", "-query", "-in", setup.path("q\(index).tsq"), "-text"]).output
            let text = try await runOffPool("openssl", ["ts", "-reply", "-in", replyPath, "-text"])
            #expect(text.status == 0, "\(text.output)")
            #expect(text.output.contains("Status: Granted."), "\(text.output)")
            #expect(Self.field("Version:", in: text.output) == "1", "\(text.output)")
            #expect(Self.field("Policy OID:", in: text.output) == testTSAPolicy, "\(text.output)")
            #expect(Self.field("Hash Algorithm:", in: text.output) == item.hash, "\(text.output)")
            #expect(text.output.contains("Accuracy: 0x01 seconds, 0x01F4 millis, unspecified micros")
                    || text.output.contains("Accuracy: 1 seconds, 500 millis, unspecified micros"), "\(text.output)")
            #expect(Self.field("Ordering:", in: text.output) == "no", "\(text.output)")
            #expect(Self.field("TSA:", in: text.output) == "DirName:/C=IT/O=Sigillo Test/CN=Sigillo Test TSA", "\(text.output)")
            // genTime: the clock's time to the millisecond, UTC (openssl prints the fraction as sent).
            let stamp = opensslDate(clock.now).replacingOccurrences(of: " GMT", with: "")
            let year = String(stamp.suffix(4))
            #expect(Self.field("Time stamp:", in: text.output) == "\(stamp.dropLast(5)).25 \(year) GMT", "\(text.output)")
            // The nonce comes back exactly, or not at all.
            let nonce = Self.field("Nonce:", in: text.output)
            #expect(nonce == Self.field("Nonce:", in: queryText), "\(queryText)\n\(text.output)")
            #expect((nonce != nil && nonce != "unspecified") == item.nonce, "\(text.output)")
            let serial = try #require(Self.field("Serial number:", in: text.output))
            serials.insert(serial)

            // The token: SignedData v3 over id-ct-TSTInfo, signed attributes with ESSCertIDv2 = SHA-256 of the TSA certificate.
            let tokenPath = setup.path("t\(index).der")
            let extracted = try await runOffPool("openssl", ["ts", "-reply", "-in", replyPath, "-token_out", "-out", tokenPath])
            #expect(extracted.status == 0, "\(extracted.output)")
            let cms = try await runOffPool("openssl", ["cms", "-inform", "DER", "-in", tokenPath, "-cmsout", "-print"]).output
            #expect(cms.contains("d.signedData: \n    version: 3\n"), "\(cms)")
            #expect(cms.contains("eContentType: id-smime-ct-TSTInfo (1.2.840.113549.1.9.16.1.4)"), "\(cms)")
            #expect(cms.contains("object: contentType (1.2.840.113549.1.9.3)"), "\(cms)")
            #expect(cms.contains("object: messageDigest (1.2.840.113549.1.9.4)"), "\(cms)")
            let asn1 = try await runOffPool("openssl", ["asn1parse", "-inform", "DER", "-in", tokenPath]).output
            #expect(asn1.contains(":id-smime-aa-signingCertificateV2"), "\(asn1)")
            #expect(asn1.contains("[HEX DUMP]:" + Self.hex(Array(SHA256.hash(data: setup.tsa.certificateDER))).uppercased()), "\(asn1)")

            // Verification: the certificate comes from the reply when asked for, else from -untrusted.
            let verify = ["ts", "-verify", "-data", setup.documentPath, "-in", replyPath, "-CAfile", setup.caPath]
            if item.certificates {
                let verified = try await runOffPool("openssl", verify)
                #expect(verified.output.contains("Verification: OK"), "\(verified.output)")
            } else {
                let withoutCertificate = try await runOffPool("openssl", verify)
                #expect(!withoutCertificate.output.contains("Verification: OK"), "no certificate to verify with: \(withoutCertificate.output)")
                let verified = try await runOffPool("openssl", verify + ["-untrusted", setup.tsaPath])
                #expect(verified.output.contains("Verification: OK"), "\(verified.output)")
            }
            // Against the query too: imprint, nonce and policy.
            let againstQuery = try await runOffPool(
                "openssl", ["ts", "-verify", "-queryfile", setup.path("q\(index).tsq"), "-in", replyPath, "-CAfile", setup.caPath, "-untrusted", setup.tsaPath])
            #expect(againstQuery.output.contains("Verification: OK"), "\(againstQuery.output)")
            // Another document does not verify.
            let otherPath = try setup.save(setup.document + [0x0A], "other\(index).bin")
            let other = try await runOffPool(
                "openssl", ["ts", "-verify", "-data", otherPath, "-in", replyPath, "-CAfile", setup.caPath, "-untrusted", setup.tsaPath])
            #expect(!other.output.contains("Verification: OK"), "\(other.output)")
        }
        #expect(serials.count == cases.count, "time-stamp serial numbers repeat: \(serials)")
        #expect(setup.tsa.signatureCount == cases.count)
    }

    @Test("the TSA certificate: critical EKU timeStamping, issued by the CA, key in the token")
    func certificateProfile() async throws {
        let clock = Self.makeClock()
        let setup = try await Setup(clock: clock)
        try await setup.tsa.checkKeyInToken()
        #expect(try await setup.fixture.token.keyAlgorithm(id: "sigillo-tsa") == .ecP256)

        let text = try await runOffPool("openssl", ["x509", "-in", setup.tsaPath, "-noout", "-text", "-nameopt", "RFC2253"]).output
        #expect(text.contains("X509v3 Extended Key Usage: critical\n                Time Stamping\n"), "\(text)")
        #expect(text.contains("X509v3 Key Usage: critical\n                Digital Signature, Non Repudiation\n"), "\(text)")
        #expect(text.contains("CA:FALSE"), "\(text)")
        #expect(text.contains("Subject: CN=Sigillo Test TSA,O=Sigillo Test,C=IT"), "\(text)")
        #expect(text.contains("Issuer: CN=Sigillo Test CA,O=Sigillo Test,C=IT"), "\(text)")
        #expect(text.contains("URI:http://127.0.0.1:8080/crl/ca.crl"), "\(text)")
        #expect(text.contains("OCSP - URI:http://127.0.0.1:8080/ocsp"), "\(text)")
        #expect(text.contains("CA Issuers - URI:http://127.0.0.1:8080/ca.cer"), "\(text)")
        #expect(text.contains("X509v3 Subject Key Identifier"), "\(text)")
        #expect(text.contains("X509v3 Authority Key Identifier"), "\(text)")
        let verified = try await runOffPool("openssl", ["verify", "-x509_strict", "-purpose", "timestampsign", "-CAfile", setup.caPath, setup.tsaPath])
        #expect(verified.status == 0 && verified.output.contains(": OK"), "\(verified.output)")
        let certificate = setup.tsa.certificate
        #expect(certificate.serialNumber.bytes.count == 16 && certificate.serialNumber.bytes.first! & 0x80 == 0)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let start = Date(timeIntervalSince1970: clock.now.timeIntervalSince1970.rounded(.down))
        #expect(certificate.notValidBefore == start && certificate.notValidAfter == calendar.date(byAdding: .year, value: 5, to: start))

        // Loaded again from PEM, DER; the same key id.
        let settings = try TimeStampAuthority.Settings(policyOID: testTSAPolicy)
        let fromPEM = try TimeStampAuthority(token: setup.fixture.token, keyID: "sigillo-tsa", certificatePEM: setup.tsa.certificatePEM, chain: [setup.ca.certificateDER], settings: settings)
        try await fromPEM.checkKeyInToken()
        let fromDER = try TimeStampAuthority(token: setup.fixture.token, keyID: "sigillo-tsa", certificateDER: setup.tsa.certificateDER, chain: [setup.ca.certificateDER], settings: settings)
        #expect(fromDER.certificate == certificate && fromDER.settings.policyOID == testTSAPolicy)

        // The TSA certificate with another key of the token does not pass the check.
        let mismatched = try TimeStampAuthority(token: setup.fixture.token, keyID: "sigillo-ca", certificate: certificate, chain: [], settings: settings)
        await #expect(throws: SigilloError.self) { try await mismatched.checkKeyInToken() }
        let missing = try TimeStampAuthority(token: setup.fixture.token, keyID: "no-such-key", certificate: certificate, chain: [], settings: settings)
        await #expect(throws: PKCS11Error.self) { try await missing.checkKeyInToken() }

        // A certificate without the timeStamping EKU (a holder's, the CA's) cannot be a TSA's.
        let holderSPKI = try await setup.fixture.token.generateKeyPair(id: "holder", algorithm: .ecP256)
        let holder = try await setup.ca.issueHolderCertificate(publicKeySPKI: holderSPKI, holder: mario, notBefore: clock.now, pkiBaseURL: "http://127.0.0.1:8080")
        #expect(throws: SigilloError.self) { try TimeStampAuthority(token: setup.fixture.token, keyID: "holder", certificate: holder, chain: [], settings: settings) }
        #expect(throws: SigilloError.self) {
            try TimeStampAuthority(token: setup.fixture.token, keyID: "sigillo-ca", certificate: setup.ca.certificate, chain: [], settings: settings)
        }
    }

    @Test("creation: bad input is refused and the new key destroyed again; settings are checked")
    func creationFailures() async throws {
        let fixture = try TestToken()
        let now = Date()
        let ca = try await CertificateAuthority.create(token: fixture.token, name: testCAName, now: now)
        let settings = try TimeStampAuthority.Settings(policyOID: testTSAPolicy)
        await #expect(throws: SigilloError.self) {
            try await TimeStampAuthority.create(token: fixture.token, keyID: "tsa", ca: ca, name: testTSAName, pkiBaseURL: "ftp://pki.example.it", now: now, settings: settings)
        }
        #expect(try await fixture.token.containsKey(id: "tsa") == false)
        await #expect(throws: SigilloError.self) {
            try await TimeStampAuthority.create(
                token: fixture.token, keyID: "tsa", ca: ca, name: testTSAName, pkiBaseURL: "http://pki.example.it", now: now, validityYears: 0, settings: settings)
        }
        #expect(try await fixture.token.containsKey(id: "tsa") == false)
        // A taken key id is not overwritten.
        await #expect(throws: PKCS11Error.self) {
            try await TimeStampAuthority.create(token: fixture.token, keyID: "sigillo-ca", ca: ca, name: testTSAName, pkiBaseURL: "http://pki.example.it", now: now, settings: settings)
        }
        try await ca.checkKeyInToken()

        #expect(throws: SigilloError.self) { try TimeStampAuthority.Settings(policyOID: "not.an.oid") }
        #expect(throws: SigilloError.self) { try TimeStampAuthority.Settings(policyOID: "") }
        for bad in [
            try TimeStampAuthority.Settings(policyOID: testTSAPolicy, accuracy: .init(seconds: 0, millis: 1000)),
            try TimeStampAuthority.Settings(policyOID: testTSAPolicy, accuracy: .init(seconds: -1)),
            try TimeStampAuthority.Settings(policyOID: testTSAPolicy, signingBurst: 0),
            try TimeStampAuthority.Settings(policyOID: testTSAPolicy, signingRate: -1),
            try TimeStampAuthority.Settings(policyOID: testTSAPolicy, signingRate: .nan),
        ] {
            await #expect(throws: SigilloError.self) {
                try await TimeStampAuthority.create(token: fixture.token, keyID: "tsa", ca: ca, name: testTSAName, pkiBaseURL: "http://pki.example.it", now: now, settings: bad)
            }
        }
        #expect(try await fixture.token.containsKey(id: "tsa") == false)
    }

    @Test("malformed and unacceptable queries are rejected with the right failure info, never granted")
    func rejections() async throws {
        let clock = Self.makeClock()
        let setup = try await Setup(clock: clock)
        let valid = try await setup.query(["-sha256", "-cert"], name: "valid.tsq")
        let sha1 = try await setup.query(["-sha1", "-cert"], name: "sha1.tsq")
        let otherPolicy = try await setup.query(["-sha256", "-tspolicy", otherTSAPolicy], name: "policy.tsq")
        #expect(valid.count > 10)

        let cases: [(name: String, query: [UInt8], failure: PKIFailureInfo, openssl: String)] = [
            ("garbage", Array("GET / HTTP/1.1\r\n\r\n".utf8), .badDataFormat, "the data submitted has the wrong format"),
            ("empty", [], .badDataFormat, "the data submitted has the wrong format"),
            ("truncated", Array(valid.dropLast()), .badDataFormat, "the data submitted has the wrong format"),
            ("trailing byte", valid + [0x00], .badDataFormat, "the data submitted has the wrong format"),
            ("not a SEQUENCE", [0x04, 0x02, 0x01, 0x02], .badDataFormat, "the data submitted has the wrong format"),
            ("version 2", try handMadeQuery(version: 2), .badRequest, "transaction not permitted or supported"),
            ("version 0", try handMadeQuery(version: 0), .badRequest, "transaction not permitted or supported"),
            ("SHA-256 with a 20-byte hash", try handMadeQuery(hash: Array(repeating: 1, count: 20)), .badDataFormat, "the data submitted has the wrong format"),
            ("SHA-512 with a 32-byte hash", try handMadeQuery(hashOID: [2, 16, 840, 1, 101, 3, 4, 2, 3]), .badDataFormat, "the data submitted has the wrong format"),
            ("SHA-1", sha1, .badAlg, "unrecognized or unsupported algorithm identifier"),
            ("MD5", try handMadeQuery(hashOID: [1, 2, 840, 113549, 2, 5], hash: Array(repeating: 1, count: 16)), .badAlg, "unrecognized or unsupported algorithm identifier"),
            ("SHA-256 with an INTEGER as parameters", try Self.replacingNull(in: handMadeQuery()), .badAlg, "unrecognized or unsupported algorithm identifier"),
            ("an extension", try handMadeQuery(extensions: true), .unacceptedExtension, "the requested extension is not supported by the TSA"),
            ("another policy", otherPolicy, .unacceptedPolicy, "the requested TSA policy is not supported by the TSA"),
            ("another policy, by hand", try handMadeQuery(policy: [1, 2, 3, 4, 5]), .unacceptedPolicy, "the requested TSA policy is not supported by the TSA"),
            ("a nonce of 65 octets", try handMadeQuery(nonce: [0x01] + Array(repeating: 0xFF, count: 64)), .badDataFormat, "the data submitted has the wrong format"),
            ("a non-minimal nonce", try handMadeQuery(nonce: [0x00, 0x01]), .badDataFormat, "the data submitted has the wrong format"),
            ("certReq before nonce", try handMadeQuery(certReqBeforeNonce: true), .badDataFormat, "the data submitted has the wrong format"),
        ]
        for (index, item) in cases.enumerated() {
            let reply = await setup.tsa.respond(to: item.query)
            #expect(!reply.granted && !reply.busy && reply.failureInfo == item.failure, "\(item.name): \(String(describing: reply.failureInfo))")
            let parsed = try ParsedTimeStampReply(reply.der)
            #expect(parsed.status == 2 && parsed.failureInfo == item.failure && parsed.token == nil, "\(item.name)")
            #expect(parsed.statusStrings.count == 1, "\(item.name)")
            let path = try setup.save(reply.der, "rejected\(index).tsr")
            let text = try await runOffPool("openssl", ["ts", "-reply", "-in", path, "-text"])
            #expect(text.status == 0 && text.output.contains("Status: Rejected."), "\(item.name): \(text.output)")
            #expect(text.output.contains(item.openssl), "\(item.name): \(text.output)")
        }
        // The check alone (for fuzzing and logs) agrees.
        for item in cases where item.name != "another policy" && item.name != "another policy, by hand" {
            #expect(TimeStampAuthority.failureInfo(for: item.query, policy: try ASN1ObjectIdentifier(dotRepresentation: testTSAPolicy)) == item.failure, "\(item.name)")
        }
        #expect(TimeStampAuthority.failureInfo(for: otherPolicy, policy: try ASN1ObjectIdentifier(dotRepresentation: testTSAPolicy)) == .unacceptedPolicy)
        #expect(TimeStampAuthority.failureInfo(for: valid, policy: try ASN1ObjectIdentifier(dotRepresentation: testTSAPolicy)) == nil)
        // The hand-made query is itself fine: the rejections above are for what was changed.
        #expect(await setup.tsa.respond(to: try handMadeQuery()).granted)
        #expect(await setup.tsa.respond(to: try handMadeQuery(policy: try ASN1ObjectIdentifier(dotRepresentation: testTSAPolicy))).granted)
        // Rejections cost no signature.
        #expect(setup.tsa.signatureCount == 2)

        // Every prefix of a valid query, and every single-byte change of its structure, is answered.
        for length in 0..<valid.count {
            let reply = await setup.tsa.respond(to: Array(valid.prefix(length)))
            #expect(!reply.granted && reply.failureInfo == .badDataFormat, "prefix \(length)")
        }
        for position in valid.indices {
            for value: UInt8 in [0x00, 0xFF, valid[position] ^ 0x01] where value != valid[position] {
                var mutated = valid
                mutated[position] = value
                let reply = await setup.tsa.respond(to: mutated)
                let parsed = try ParsedTimeStampReply(reply.der)
                #expect(parsed.status == (reply.granted ? 0 : 2) && (reply.granted || reply.failureInfo != nil), "byte \(position) = \(value)")
            }
        }
    }

    @Test("PKIFailureInfo is a DER named BIT STRING with minimal bits")
    func failureInfoEncoding() throws {
        #expect(PKIFailureInfo.badAlg.derEncoded == [0x03, 0x02, 0x07, 0x80])
        #expect(PKIFailureInfo.badRequest.derEncoded == [0x03, 0x02, 0x05, 0x20])
        #expect(PKIFailureInfo.badDataFormat.derEncoded == [0x03, 0x02, 0x02, 0x04])
        #expect(PKIFailureInfo.timeNotAvailable.derEncoded == [0x03, 0x03, 0x01, 0x00, 0x02])
        #expect(PKIFailureInfo.unacceptedPolicy.derEncoded == [0x03, 0x03, 0x00, 0x00, 0x01])
        #expect(PKIFailureInfo.unacceptedExtension.derEncoded == [0x03, 0x04, 0x07, 0x00, 0x00, 0x80])
        #expect(PKIFailureInfo.systemFailure.derEncoded == [0x03, 0x05, 0x06, 0x00, 0x00, 0x00, 0x40])
        #expect(PKIFailureInfo([.badAlg, .badDataFormat]).derEncoded == [0x03, 0x02, 0x02, 0x84])
        for info in [PKIFailureInfo.badAlg, .badRequest, .badDataFormat, .timeNotAvailable, .unacceptedPolicy, .unacceptedExtension, .systemFailure] {
            #expect(try PKIFailureInfo(derEncoded: try DER.parse(info.derEncoded)) == info)
        }
        #expect(PKIFailureInfo.systemFailure.description == "systemFailure")
    }

    @Test("busy when the signing budget is spent, again granted once the clock moves on")
    func busy() async throws {
        let clock = Self.makeClock()
        let settings = try TimeStampAuthority.Settings(policyOID: testTSAPolicy, signingBurst: 2, signingRate: 0.5)
        let setup = try await Setup(clock: clock, settings: settings)
        let query = try handMadeQuery()
        #expect(await setup.tsa.respond(to: query).granted)
        #expect(await setup.tsa.respond(to: query).granted)
        let refused = await setup.tsa.respond(to: query)
        #expect(!refused.granted && refused.busy && refused.failureInfo == .systemFailure && refused.retryAfter == 2)
        let parsed = try ParsedTimeStampReply(refused.der)
        #expect(parsed.status == 2 && parsed.failureInfo == .systemFailure && parsed.statusStrings == ["busy"] && parsed.token == nil)
        let hash = Array(SHA256.hash(data: setup.document))
        await #expect(throws: SigilloError(.tokenUnavailable, "the time-stamping authority is busy: try again in 2 s")) {
            try await setup.tsa.timeStampToken(hash: hash, hashAlgorithmOID: "2.16.840.1.101.3.4.2.1", nonce: nil)
        }
        // A malformed query is still told what is wrong, busy or not.
        #expect(await setup.tsa.respond(to: [0x30, 0x00]).failureInfo == .badDataFormat)

        clock.advance(1)
        #expect(await setup.tsa.respond(to: query).retryAfter == 1)
        clock.advance(1)
        #expect(await setup.tsa.respond(to: query).granted)
        #expect(await setup.tsa.respond(to: query).busy)
        // A clock going back gives nothing back.
        clock.advance(-1.5)
        #expect(await setup.tsa.respond(to: query).busy)
        #expect(setup.tsa.signatureCount == 3)
    }

    @Test("concurrent requests: exactly the burst is granted, the rest is busy")
    func concurrentBurst() async throws {
        let clock = Self.makeClock()
        let settings = try TimeStampAuthority.Settings(policyOID: testTSAPolicy, signingBurst: 5, signingRate: 0)
        let setup = try await Setup(clock: clock, settings: settings)
        let tsa = setup.tsa
        let query = try handMadeQuery()
        let replies = await withTaskGroup(of: TimeStampAuthority.Reply.self) { group in
            for _ in 0..<24 { group.addTask { await tsa.respond(to: query) } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(replies.filter(\.granted).count == 5)
        #expect(replies.filter(\.busy).count == 19)
        #expect(replies.allSatisfy { $0.granted != $0.busy })
        #expect(tsa.signatureCount == 5)
        // The granted ones are distinct time-stamps of the same query.
        let tokens = Set(try replies.filter(\.granted).map { try #require(try ParsedTimeStampReply($0.der).token) })
        #expect(tokens.count == 5)
    }

    @Test("no time-stamp outside the TSA certificate's validity")
    func timeNotAvailable() async throws {
        let clock = Self.makeClock()
        let setup = try await Setup(clock: clock)
        clock.advance(-3600)
        let reply = await setup.tsa.respond(to: try handMadeQuery())
        #expect(!reply.granted && !reply.busy && reply.failureInfo == .timeNotAvailable)
        #expect(try ParsedTimeStampReply(reply.der).failureInfo == .timeNotAvailable)
        clock.advance(3600 + 6 * 366 * 86400)
        #expect(await setup.tsa.respond(to: try handMadeQuery()).failureInfo == .timeNotAvailable)
        await #expect(throws: SigilloError.self) {
            try await setup.tsa.timeStampToken(hash: Array(repeating: 0, count: 32), hashAlgorithmOID: "2.16.840.1.101.3.4.2.1", nonce: nil)
        }
        #expect(setup.tsa.signatureCount == 0)
    }

    @Test("CSC signatures/timestamp: a token over a hash verifies with openssl ts -verify -token_in")
    func timeStampTokenForCSC() async throws {
        let clock = Self.makeClock()
        let setup = try await Setup(clock: clock)
        let cases: [(oid: String, hash: [UInt8], nonce: [UInt8]?, nonceText: String?)] = [
            ("2.16.840.1.101.3.4.2.1", Array(SHA256.hash(data: setup.document)), [0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07], "0x8001020304050607"),
            ("2.16.840.1.101.3.4.2.2", Array(SHA384.hash(data: setup.document)), nil, nil),
            ("2.16.840.1.101.3.4.2.3", Array(SHA512.hash(data: setup.document)), [0x00, 0x00, 0x2A], "0x2A"),
        ]
        for (index, item) in cases.enumerated() {
            let token = try await setup.tsa.timeStampToken(hash: item.hash, hashAlgorithmOID: item.oid, nonce: item.nonce)
            let path = try setup.save(token, "token\(index).der")
            let verified = try await runOffPool("openssl", ["ts", "-verify", "-token_in", "-in", path, "-digest", Self.hex(item.hash), "-CAfile", setup.caPath])
            #expect(verified.output.contains("Verification: OK"), "\(verified.output)")
            let wrong = try await runOffPool(
                "openssl", ["ts", "-verify", "-token_in", "-in", path, "-digest", Self.hex(item.hash.map { $0 ^ 1 }), "-CAfile", setup.caPath])
            #expect(!wrong.output.contains("Verification: OK"), "\(wrong.output)")
            let text = try await runOffPool("openssl", ["ts", "-reply", "-token_in", "-in", path, "-text"]).output
            #expect(Self.field("Policy OID:", in: text) == testTSAPolicy, "\(text)")
            #expect(Self.field("Nonce:", in: text) == (item.nonceText ?? "unspecified"), "\(text)")
        }
        let sha256OID = "2.16.840.1.101.3.4.2.1"
        let hash = Array(repeating: UInt8(7), count: 32)
        for (badHash, oid, nonce) in [
            (Array(repeating: UInt8(7), count: 20), sha256OID, nil as [UInt8]?),
            (hash, "1.3.14.3.2.26", nil),
            (hash, "1.2.3", nil),
            (hash, "sha256", nil),
            (hash, sha256OID, []),
            (hash, sha256OID, Array(repeating: 1, count: 65)),
        ] {
            await #expect(throws: SigilloError.self) {
                do {
                    _ = try await setup.tsa.timeStampToken(hash: badHash, hashAlgorithmOID: oid, nonce: nonce)
                } catch let error as SigilloError {
                    #expect(error.code == .invalidRequest)
                    throw error
                }
            }
        }
        #expect(setup.tsa.signatureCount == cases.count)
    }

    /// `query` with the NULL parameters of its hash algorithm replaced by INTEGER 0 (same length).
    static func replacingNull(in query: [UInt8]) throws -> [UInt8] {
        var bytes = query
        let index = try #require((0..<bytes.count - 1).first { bytes[$0] == 0x05 && bytes[$0 + 1] == 0x00 })
        bytes[index] = 0x02
        bytes[index + 1] = 0x01
        // INTEGER needs one content octet: grow the three enclosing lengths by one.
        bytes.insert(0x00, at: index + 2)
        bytes[1] += 1  // TimeStampReq
        bytes[6] += 1  // MessageImprint
        bytes[8] += 1  // AlgorithmIdentifier
        return bytes
    }
}
