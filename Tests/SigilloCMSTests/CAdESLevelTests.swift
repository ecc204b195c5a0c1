import Crypto
import CSCClient
import Foundation
import PKCS11
import SigilloCMS
import SigilloTestSupport
import SwiftASN1
import Testing

/// A CA, a signer and a TSA made by openssl in a fresh folder, and openssl as the TSA (`openssl ts -reply`), the OCSP
/// responder (`openssl ocsp -index`) and the CRL issuer (`openssl ca -gencrl`): the outside tools the RFC 3161, OCSP
/// and CRL code of `SigilloCMS` talk to.
struct OpenSSLPKI {
    let directory: URL
    let signerKey: P256.Signing.PrivateKey
    let signerDER: [UInt8]
    let caDER: [UInt8]

    static let base = "http://127.0.0.1:9"

    init() throws {
        self.directory = try TestHSM.makeTemporaryDirectory()
        try Self.shell(in: self.directory, """
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -subj "/C=IT/CN=OpenSSL Test CA" -days 2 \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout signer.key -out signer.csr -subj "/C=IT/CN=Mario Rossi"
            printf 'keyUsage=critical,digitalSignature,nonRepudiation\\ncrlDistributionPoints=URI:\(Self.base)/crl/ca.crl\\nauthorityInfoAccess=OCSP;URI:\(Self.base)/ocsp,caIssuers;URI:\(Self.base)/ca.cer\\n' > signer.ext
            openssl x509 -req -in signer.csr -CA ca.pem -CAkey ca.key -set_serial 0x9A01 -days 1 -extfile signer.ext -out signer.pem
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tsa.key -out tsa.csr -subj "/C=IT/CN=OpenSSL Test TSA"
            printf 'extendedKeyUsage=critical,timeStamping\\n' > tsa.ext
            openssl x509 -req -in tsa.csr -CA ca.pem -CAkey ca.key -set_serial 5 -days 1 -extfile tsa.ext -out tsa.pem
            openssl x509 -in signer.pem -outform DER -out signer.der
            openssl x509 -in ca.pem -outform DER -out ca.der
            openssl pkcs8 -topk8 -nocrypt -in signer.key -out signer.p8
            touch index.txt; echo 01 > crlnumber; echo 01 > tsaserial
            printf '[ca]\\ndefault_ca = d\\n[d]\\ndatabase = index.txt\\ncrlnumber = crlnumber\\ndefault_md = sha256\\ndefault_crl_days = 1\\n' > ca.cnf
            openssl ca -config ca.cnf -keyfile ca.key -cert ca.pem -valid signer.pem
            """)
        self.signerKey = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOf: self.directory.appendingPathComponent("signer.p8"), encoding: .utf8))
        self.signerDER = Array(try Data(contentsOf: self.directory.appendingPathComponent("signer.der")))
        self.caDER = Array(try Data(contentsOf: self.directory.appendingPathComponent("ca.der")))
    }

    func path(_ name: String) -> String { self.directory.appendingPathComponent(name).path }

    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        try Data(bytes).write(to: URL(fileURLWithPath: self.path(name)))
        return self.path(name)
    }

    func read(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: self.path(name)))) }

    /// `openssl ts -reply` to `query`, with the digests the TSA accepts.
    func timeStampReply(_ query: TimeStampQuery, digests: String = "sha256, sha384, sha512") throws -> [UInt8] {
        let queryPath = try self.write(try query.derEncoded(), "query.tsq")
        try Data("""
            [tsa]
            default_tsa = t
            [t]
            serial = tsaserial
            crypto_device = builtin
            signer_cert = tsa.pem
            certs = ca.pem
            signer_key = tsa.key
            signer_digest = sha256
            default_policy = 1.2.3.4.1
            digests = \(digests)
            accuracy = secs:1
            ess_cert_id_chain = no
            ess_cert_id_alg = sha256

            """.utf8).write(to: URL(fileURLWithPath: self.path("tsa.cnf")))
        try Self.shell(in: self.directory, "openssl ts -reply -config tsa.cnf -queryfile \(queryPath) -out reply.tsr")
        return try self.read("reply.tsr")
    }

    /// `openssl ocsp` as a responder from `index.txt`, signing with the CA key.
    func ocspResponse(_ query: OCSPQuery) throws -> [UInt8] {
        let requestPath = try self.write(try query.derEncoded(), "request.ocsp")
        try Self.shell(in: self.directory, "openssl ocsp -index index.txt -CA ca.pem -rsigner ca.pem -rkey ca.key -reqin \(requestPath) -respout response.ocsp")
        return try self.read("response.ocsp")
    }

    /// `openssl ca -gencrl`, DER.
    func crl() throws -> [UInt8] {
        try Self.shell(in: self.directory, "openssl ca -config ca.cnf -keyfile ca.key -cert ca.pem -gencrl -out crl.pem && openssl crl -in crl.pem -outform DER -out crl.der")
        return try self.read("crl.der")
    }

    func revokeSigner() throws {
        try Self.shell(in: self.directory, "openssl ca -config ca.cnf -keyfile ca.key -cert ca.pem -revoke signer.pem -crl_reason keyCompromise")
    }

    @discardableResult
    static func shell(in directory: URL, _ script: String) throws -> String {
        let result = try run("/bin/sh", ["-c", "set -e; cd '\(directory.path)'; \(script)"])
        guard result.status == 0 else { throw CMSError("openssl failed: \(result.output)") }
        return result.output
    }
}

@Suite("CAdES B-T and B-LT: RFC 3161 queries and tokens, OCSP and CRLs, with openssl on the other side")
struct CAdESLevelTests {
    /// The signer's B-B signature of a 1000-byte document: the document path and the prepared signature.
    func signed(_ pki: OpenSSLPKI) async throws -> (document: String, prepared: CAdESBuilder.Prepared, signature: [UInt8]) {
        let document = try pki.write((0..<1000).map { UInt8($0 % 251) }, "document.bin")
        let digest = try await FileHasher(algorithm: .sha256).hash(file: document)
        let builder = try CAdESBuilder(signerCertificate: pki.signerDER, chain: [pki.caDER])
        let prepared = try builder.prepare(contentDigest: digest)
        let signature = Array(try pki.signerKey.signature(for: PrecomputedSHA256(bytes: prepared.digestToSign)).rawRepresentation)
        return (document, prepared, signature)
    }

    @Test("B-T: a query openssl reads, openssl's token checked (imprint, nonce, certificate) and embedded; openssl cms and ts verify")
    func timeStamped() async throws {
        let pki = try OpenSSLPKI()
        defer { try? FileManager.default.removeItem(at: pki.directory) }
        let (document, prepared, signature) = try await self.signed(pki)
        // Raw r‖s from the service; the time-stamp is over the DER ECDSA-Sig-Value that goes in SignerInfo.
        let value = try prepared.signatureValue(signature: signature)
        #expect(value.first == 0x30 && value != signature)
        let query = try TimeStampQuery(digest: Array(SHA256.hash(data: value)))
        let nonce = try #require(query.nonce)
        #expect(nonce.count == 8 && query.nonceHex?.count == 16)

        let printed = try OpenSSLPKI.shell(in: pki.directory, "openssl ts -query -in \(try pki.write(try query.derEncoded(), "q.tsq")) -text")
        #expect(printed.contains("Hash Algorithm: sha256") && printed.contains("Certificate required: yes"), "\(printed)")
        #expect(printed.lowercased().contains("nonce: 0x\(query.nonceHex!)"), "\(printed)")

        let reply = try TimeStampReply(der: try pki.timeStampReply(query))
        #expect(reply.isGranted && reply.status == 0)
        let token = try reply.grantedToken()
        try OpenSSLPKI.shell(in: pki.directory, "openssl ts -reply -in reply.tsr -token_out -out token.der")
        #expect(token == (try pki.read("token.der")), "the token is the reply's timeStampToken, byte for byte")
        let info = try query.check(token: token)
        #expect(info.nonce == nonce && info.policyOID == "1.2.3.4.1" && info.hashAlgorithm == .sha256 && info.certificateCount >= 1)
        #expect(abs(info.genTime.timeIntervalSinceNow) < 3600)

        // The same token does not answer another request: another nonce, another digest.
        #expect(throws: CMSError.self) { try TimeStampQuery(digest: query.digest).check(token: token) }
        #expect(throws: CMSError.self) { try TimeStampQuery(digest: Array(SHA256.hash(data: [1, 2, 3])), nonce: nonce).check(token: token) }

        let p7s = try prepared.finish(signature: signature, timeStampToken: token)
        let path = try pki.write(p7s, "document.bin.p7s")
        let verified = try run("openssl", ["cms", "-verify", "-binary", "-content", document, "-in", path, "-inform", "DER", "-CAfile", pki.path("ca.pem"), "-purpose", "any", "-out", "/dev/null"])
        #expect(verified.status == 0 && verified.output.contains("Verification successful"), "\(verified.output)")
        let cms = try run("openssl", ["cms", "-cmsout", "-print", "-inform", "DER", "-in", path])
        #expect(cms.output.contains("id-smime-aa-timeStampToken") || cms.output.contains("1.2.840.113549.1.9.16.2.14"), "\(cms.output)")
        let hex = query.digest.map { String(format: "%02x", $0) }.joined()
        let stamp = try run("openssl", ["ts", "-verify", "-in", pki.path("token.der"), "-token_in", "-digest", hex, "-CAfile", pki.path("ca.pem")])
        #expect(stamp.status == 0 && stamp.output.contains("Verification: OK"), "\(stamp.output)")
        // B-B unchanged: without a token, the same bytes as finish(signature:), and the token is what was added.
        let plain = try prepared.finish(signature: signature)
        #expect(plain == (try prepared.finish(signature: signature, timeStampToken: nil)))
        #expect(p7s.firstRange(of: token) != nil && plain.firstRange(of: token) == nil)
    }

    @Test("a token over another signature value is refused by finish")
    func tokenForAnotherSignature() async throws {
        let pki = try OpenSSLPKI()
        defer { try? FileManager.default.removeItem(at: pki.directory) }
        let (_, prepared, signature) = try await self.signed(pki)
        let other = Array(try pki.signerKey.signature(for: PrecomputedSHA256(bytes: prepared.digestToSign)).rawRepresentation)
        let query = try TimeStampQuery(digest: Array(SHA256.hash(data: try prepared.signatureValue(signature: other))))
        let token = try TimeStampReply(der: try pki.timeStampReply(query)).grantedToken()
        #expect(throws: CMSError.self) { try prepared.finish(signature: signature, timeStampToken: token) }
        #expect(try prepared.finish(signature: other, timeStampToken: token).count > 0)
    }

    @Test("a TSA's rejection: status, statusString and failInfo in the error")
    func rejected() throws {
        let pki = try OpenSSLPKI()
        defer { try? FileManager.default.removeItem(at: pki.directory) }
        let query = try TimeStampQuery(digest: Array(SHA256.hash(data: [7])))
        let reply = try TimeStampReply(der: try pki.timeStampReply(query, digests: "sha384"))
        #expect(!reply.isGranted && reply.status == 2 && reply.failures == ["badAlg"] && reply.token == nil)
        #expect { try reply.grantedToken() } throws: { error in
            let text = "\(error)"
            return text.contains("rejection") && text.contains("badAlg") && text.contains("Message digest algorithm is not supported")
        }
        #expect(throws: CMSError.self) { try TimeStampReply(der: [0x30, 0x00]) }
    }

    @Test("OCSP: a request openssl answers, good then revoked; the CRL lists the revoked serial; URLs read from the certificate")
    func revocation() throws {
        let pki = try OpenSSLPKI()
        defer { try? FileManager.default.removeItem(at: pki.directory) }
        let signer = try SignerCertificate(der: pki.signerDER)
        let ca = try SignerCertificate(der: pki.caDER)
        #expect(signer.crlURLs == ["\(OpenSSLPKI.base)/crl/ca.crl"])
        #expect(signer.ocspURLs == ["\(OpenSSLPKI.base)/ocsp"])
        #expect(signer.serialNumber == [0x9A, 0x01])
        #expect(ca.crlURLs.isEmpty && ca.ocspURLs.isEmpty)
        #expect(throws: CMSError.self) { try OCSPQuery(certificate: signer, issuer: signer) }

        let query = try OCSPQuery(certificate: signer, issuer: ca)
        let text = try OpenSSLPKI.shell(in: pki.directory, "openssl ocsp -reqin \(try pki.write(try query.derEncoded(), "q.ocsp")) -req_text")
        #expect(text.contains("Serial Number: 9A01") && text.contains("Hash Algorithm: sha1"), "\(text)")

        let good = try OCSPReply(der: try pki.ocspResponse(query))
        let single = try good.response(for: query)
        #expect(single.status == .good && single.serialNumber == [0x9A, 0x01])
        #expect(good.signatureAlgorithmOID == "1.2.840.10045.4.3.2" && !good.certificates.isEmpty)
        let cleanCRL = try CRLInfo(der: try pki.crl())
        #expect(cleanCRL.revoked.isEmpty && cleanCRL.issuerDER == signer.issuerDER && cleanCRL.nextUpdate != nil)

        try pki.revokeSigner()
        let revoked = try OCSPReply(der: try pki.ocspResponse(query)).response(for: query)
        guard case .revoked(_, let reason) = revoked.status else {
            Issue.record("not revoked: \(revoked.status)")
            return
        }
        #expect(reason == 1, "keyCompromise")
        let crl = try CRLInfo(der: try pki.crl())
        #expect(crl.revoked[[0x9A, 0x01]] != nil)

        #expect { try OCSPReply(der: [0x30, 0x03, 0x0A, 0x01, 0x03]) } throws: { "\($0)".contains("tryLater") }
        #expect(throws: CMSError.self) { try CRLInfo(der: pki.signerDER) }
    }

    @Test("B-LT: the CRL and the OCSP response in crls make SignedData v5 (v1 with a CRL only); openssl verifies, -crl_check offline")
    func longTerm() async throws {
        let pki = try OpenSSLPKI()
        defer { try? FileManager.default.removeItem(at: pki.directory) }
        let (document, prepared, signature) = try await self.signed(pki)
        let query = try TimeStampQuery(digest: Array(SHA256.hash(data: try prepared.signatureValue(signature: signature))))
        let token = try TimeStampReply(der: try pki.timeStampReply(query)).grantedToken()
        let crl = try pki.crl()
        let ocsp = try pki.ocspResponse(try OCSPQuery(certificate: SignerCertificate(der: pki.signerDER), issuer: SignerCertificate(der: pki.caDER)))

        let full = try prepared.finish(signature: signature, timeStampToken: token, validation: ValidationData(revocation: [.ocspResponse(ocsp), .crl(crl)]))
        let crlOnly = try prepared.finish(signature: signature, timeStampToken: token, validation: ValidationData(revocation: [.crl(crl)]))
        for (name, p7s, version) in [("full.p7s", full, 5), ("crl-only.p7s", crlOnly, 1)] {
            let path = try pki.write(p7s, name)
            let printed = try run("openssl", ["cms", "-cmsout", "-print", "-inform", "DER", "-in", path])
            #expect(printed.output.contains("version: \(version)"), "\(name): \(printed.output)")
            let verified = try run("openssl", ["cms", "-verify", "-binary", "-content", document, "-in", path, "-inform", "DER",
                                               "-CAfile", pki.path("ca.pem"), "-purpose", "any", "-crl_check", "-out", "/dev/null"])
            #expect(verified.status == 0 && verified.output.contains("Verification successful"), "\(name): \(verified.output)")
        }
        // The OCSP response is inside, as `other` with id-ri-ocsp-response, byte for byte.
        var choice = DER.Serializer()
        try choice.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)) { serializer in
            try serializer.serialize(ASN1ObjectIdentifier("1.3.6.1.5.5.7.16.2"))
            serializer.serializeRawBytes(ocsp)
        }
        #expect(full.firstRange(of: choice.serializedBytes) != nil)
        #expect(full.firstRange(of: crl) != nil)
        // Without the CRL inside, -crl_check finds none: the check can fail.
        let bare = try pki.write(try prepared.finish(signature: signature, timeStampToken: token), "bare.p7s")
        let unchecked = try run("openssl", ["cms", "-verify", "-binary", "-content", document, "-in", bare, "-inform", "DER",
                                            "-CAfile", pki.path("ca.pem"), "-purpose", "any", "-crl_check", "-out", "/dev/null"])
        #expect(unchecked.status != 0, "\(unchecked.output)")
    }

    @Test("the level and its time-stamp source: --tsa first, then the service's signatures/timestamp; B-T/B-LT without a TSA is an error")
    func levelChoice() async throws {
        struct Unreachable: Error {}
        let withTimestamp = { () async throws -> [String] in ["auth/login", "signatures/signHash", "signatures/timestamp"] }
        let without = { () async throws -> [String] in ["auth/login", "signatures/signHash"] }
        let failing = { () async throws -> [String] in throw Unreachable() }
        let server = "https://sign.example"

        #expect(try await LevelChoice.resolve(requested: nil, tsaURL: nil, server: server, serviceMethods: withTimestamp) == LevelChoice(level: .t, source: .service))
        #expect(try await LevelChoice.resolve(requested: nil, tsaURL: nil, server: server, serviceMethods: without) == LevelChoice(level: .b, source: nil))
        #expect(try await LevelChoice.resolve(requested: nil, tsaURL: nil, server: server, serviceMethods: failing) == LevelChoice(level: .b, source: nil))
        // --tsa wins, without asking the service.
        #expect(try await LevelChoice.resolve(requested: nil, tsaURL: "http://tsa.example/tsa", server: server, serviceMethods: failing)
                == LevelChoice(level: .t, source: .url("http://tsa.example/tsa")))
        #expect(try await LevelChoice.resolve(requested: .lt, tsaURL: nil, server: server, serviceMethods: withTimestamp) == LevelChoice(level: .lt, source: .service))
        // B-B asks nobody.
        #expect(try await LevelChoice.resolve(requested: .b, tsaURL: "http://tsa.example/tsa", server: server, serviceMethods: failing) == LevelChoice(level: .b, source: nil))
        for level in [CAdESLevel.t, .lt] {
            await #expect { try await LevelChoice.resolve(requested: level, tsaURL: nil, server: server, serviceMethods: without) } throws: { error in
                let error = error as? SignatureLevelError
                return error?.code == .noTimeStampAuthority && error!.reason.contains("CAdES \(level.rawValue) needs a time-stamping authority")
                    && error!.reason.contains("does not offer signatures/timestamp") && error!.reason.contains("--tsa")
            }
        }
        #expect(CAdESLevel(name: "b-lt") == .lt && CAdESLevel(name: "BT") == .t && CAdESLevel(name: "B-LTA") == nil)
    }
}
