import Crypto
import Foundation
import PKCS11
import CSCClient
import SigilloDomain
import SigilloCMS
import SigilloSQLite
import SigilloTestSupport
import SwiftASN1
import Testing

@Suite("sigillo sign against the real server")
struct SignCLITests {
    static let sigillo = repositoryRoot.appendingPathComponent(".build/debug/sigillo").path

    @Test("detached CAdES B-B .p7s for several files under one SAD; openssl cms -verify accepts each", arguments: [KeyAlgorithm.ecP256, .rsa2048])
    func signFiles(algorithm: KeyAlgorithm) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.sigillo), "build the sigillo product first (swift build --build-tests does)")
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            var account = try await server.activate(name: "Sara", keyAlgorithm: algorithm)
            let folder = try TestHSM.makeTemporaryDirectory()
            let files = try (0..<3).map { index -> String in
                let path = folder.appendingPathComponent("contract-\(index).pdf").path
                try Data(String(repeating: "clause \(index)\n", count: 1000 * (index + 1)).utf8).write(to: URL(fileURLWithPath: path))
                return path
            }
            let input = Data("\(account.password)\n\(await account.nextOTP())\n".utf8)
            let result = try await runOffPool(Self.sigillo, ["sign"] + files + [
                "--server", server.baseURL, "--ca", server.tlsCAFile, "--username", account.username, "--password-stdin", "--level", "B-B",
            ], input: input)
            #expect(result.status == 0, "\(result.output)")
            for file in files {
                let verify = try await Self.verify(file, ca: server.caFile)
                #expect(verify.status == 0 && verify.output.contains("Verification successful"), "\(file): \(verify.output)")
                // B-B: no unsigned attributes, no revocation data, version 1.
                let signed = try SignedFile(path: file + ".p7s")
                #expect(signed.version == 1 && signed.timeStampToken == nil && signed.revocation.isEmpty)
            }
            // A changed file no longer verifies.
            try Data("tampered".utf8).write(to: URL(fileURLWithPath: files[0]))
            let tampered = try await Self.verify(files[0], ca: server.caFile)
            #expect(tampered.status != 0)
            // All three under one authorization.
            let authorizations = try await server.services.store.auditRecords().filter { $0.event.action == "credential.authorize" && $0.event.outcome == "ok" }
            #expect(authorizations.count == 1)
            #expect(authorizations.first?.event.details == "signatures=3 hashes=3")
        }
    }

    @Test("a wrong OTP is a clear error and writes nothing")
    func wrongOTP() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Ugo")
            let folder = try TestHSM.makeTemporaryDirectory()
            let file = folder.appendingPathComponent("a.txt").path
            try Data("a".utf8).write(to: URL(fileURLWithPath: file))
            let result = try await runOffPool(Self.sigillo, ["sign", file, "--server", server.baseURL, "--ca", server.tlsCAFile, "--username", account.username, "--password-stdin"],
                                              input: Data("\(account.password)\n000000\n".utf8))
            #expect(result.status != 0)
            #expect(result.output.contains("invalid_otp"), "\(result.output)")
            #expect(!FileManager.default.fileExists(atPath: file + ".p7s"))
        }
    }

    @Test("B-T by default when the service lists signatures/timestamp: the token verifies with openssl ts against the signature value", arguments: [KeyAlgorithm.ecP256, .rsa2048])
    func timeStampFromService(algorithm: KeyAlgorithm) async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            var account = try await server.activate(name: "Tea", keyAlgorithm: algorithm)
            let folder = try TestHSM.makeTemporaryDirectory()
            let files = try (0..<2).map { index -> String in
                let path = folder.appendingPathComponent("deed-\(index).txt").path
                try Data("deed \(index)\n".utf8).write(to: URL(fileURLWithPath: path))
                return path
            }
            var environment = TestHSM.environment
            environment["SIGILLO_TSA_URL"] = nil
            let result = try await runOffPool(Self.sigillo, ["sign"] + files + [
                "--server", server.baseURL, "--ca", server.tlsCAFile, "--username", account.username, "--password-stdin",
            ], environment: environment, input: Data("\(account.password)\n\(await account.nextOTP())\n".utf8))
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("(CAdES B-T)"), "\(result.output)")
            for file in files {
                try await Self.checkTimeStamped(file, server: server, folder: folder)
                let signed = try SignedFile(path: file + ".p7s")
                #expect(signed.version == 1 && signed.revocation.isEmpty)
            }
        }
    }

    @Test("B-T from --tsa URL (RFC 3161 over plain HTTP); a URL that is no TSA is a clear error and writes nothing")
    func timeStampFromURL() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture, pki: true) { server in
            var account = try await server.activate(name: "Nino")
            let folder = try TestHSM.makeTemporaryDirectory()
            let file = folder.appendingPathComponent("letter.txt").path
            try Data("letter\n".utf8).write(to: URL(fileURLWithPath: file))
            let connection = ["--server", server.baseURL, "--ca", server.tlsCAFile, "--username", account.username, "--password-stdin"]

            let wrong = try await runOffPool(Self.sigillo, ["sign", file, "--level", "B-T", "--tsa", "\(server.pkiBaseURL)/no-tsa-here"] + connection,
                                             input: Data("\(account.password)\n\(await account.nextOTP())\n".utf8))
            #expect(wrong.status != 0)
            #expect(wrong.output.contains("time-stamp from \(server.pkiBaseURL)/no-tsa-here failed") && wrong.output.contains("HTTP 404"), "\(wrong.output)")
            #expect(!FileManager.default.fileExists(atPath: file + ".p7s"))
            // SIGILLO_TSA_URL is used when there is no --tsa (and before the service's signatures/timestamp).
            var environment = TestHSM.environment
            environment["SIGILLO_TSA_URL"] = "\(server.pkiBaseURL)/env-tsa"
            let fromEnvironment = try await runOffPool(Self.sigillo, ["sign", file] + connection, environment: environment,
                                                       input: Data("\(account.password)\n\(await account.nextOTP())\n".utf8))
            #expect(fromEnvironment.status != 0 && fromEnvironment.output.contains("time-stamp from \(server.pkiBaseURL)/env-tsa failed"), "\(fromEnvironment.output)")
            #expect(!FileManager.default.fileExists(atPath: file + ".p7s"))

            let result = try await runOffPool(Self.sigillo, ["sign", file, "--level", "b-t", "--tsa", "\(server.pkiBaseURL)/tsa"] + connection,
                                              input: Data("\(account.password)\n\(await account.nextOTP())\n".utf8))
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("(CAdES B-T)"), "\(result.output)")
            try await Self.checkTimeStamped(file, server: server, folder: folder)
        }
    }

    @Test("B-LT: chain, CRL and OCSP response inside (version 5); openssl reads them back and verifies with -crl_check; pyHanko validates it with the server stopped", arguments: [KeyAlgorithm.ecP256, .rsa2048])
    func longTerm(algorithm: KeyAlgorithm) async throws {
        let python = repositoryRoot.appendingPathComponent(".venv/bin/python").path
        try #require(FileManager.default.isExecutableFile(atPath: python), "run `make venv` first (make test does)")
        let fixture = try TestToken()
        let (file, caFile) = try await LiveServer.with(fixture, pki: true) { server in
            var account = try await server.activate(name: "Lia", keyAlgorithm: algorithm)
            let folder = try TestHSM.makeTemporaryDirectory()
            let file = folder.appendingPathComponent("will.txt").path
            try Data("last will\n".utf8).write(to: URL(fileURLWithPath: file))
            let result = try await runOffPool(Self.sigillo, ["sign", file, "--level", "B-LT", "--output-dir", folder.path,
                                                             "--server", server.baseURL, "--ca", server.tlsCAFile, "--username", account.username, "--password-stdin"],
                                              input: Data("\(account.password)\n\(await account.nextOTP())\n".utf8))
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("(CAdES B-LT)"), "\(result.output)")
            try await Self.checkTimeStamped(file, server: server, folder: folder)

            let signed = try SignedFile(path: file + ".p7s")
            #expect(signed.version == 5, "an OCSP response as `other` revocation info makes SignedData v5")
            #expect(signed.certificates.contains(account.credential.certificateDER))
            let caDER = try #require(try Self.derOfPEM(server.caFile))
            #expect(signed.certificates.contains(caDER))
            let crls = signed.revocation.filter { $0.ocsp == false }
            let ocsps = signed.revocation.filter { $0.ocsp }
            try #require(crls.count == 1 && ocsps.count == 1, "\(signed.revocation.count) revocation items")

            // The CRL: signed by the CA, not listing the signer.
            let crlPath = folder.appendingPathComponent("embedded.crl").path
            try Data(crls[0].der).write(to: URL(fileURLWithPath: crlPath))
            let crl = try await runOffPool("openssl", ["crl", "-inform", "DER", "-in", crlPath, "-CAfile", server.caFile, "-noout", "-text"])
            #expect(crl.status == 0 && crl.output.contains("verify OK"), "\(crl.output)")
            let serial = try SignerCertificate(der: account.credential.certificateDER).serialNumber.map { String(format: "%02X", $0) }.joined()
            #expect(!crl.output.contains(serial), "the signer's serial is on the embedded CRL")

            // The OCSP response: signed by the CA, `good` for the signer's certificate.
            let ocspPath = folder.appendingPathComponent("embedded.ocsp").path
            try Data(ocsps[0].der).write(to: URL(fileURLWithPath: ocspPath))
            let signerPEM = try server.writeCertificate(account.credential, name: "signer")
            let ocsp = try await runOffPool("openssl", ["ocsp", "-respin", ocspPath, "-CAfile", server.caFile, "-issuer", server.caFile, "-cert", signerPEM, "-no_nonce"])
            #expect(ocsp.status == 0 && ocsp.output.contains("Response verify OK") && ocsp.output.contains("\(signerPEM): good"), "\(ocsp.output)")

            // Offline, with the CRL from inside the file only: openssl cms -verify -crl_check finds it there.
            let offline = try await runOffPool("openssl", ["cms", "-verify", "-binary", "-content", file, "-in", file + ".p7s", "-inform", "DER",
                                                           "-CAfile", server.caFile, "-purpose", "any", "-crl_check", "-out", "/dev/null"])
            #expect(offline.status == 0 && offline.output.contains("Verification successful"), "\(offline.output)")
            let caFile = folder.appendingPathComponent("ca.pem").path
            try FileManager.default.copyItem(atPath: server.caFile, toPath: caFile)
            return (file, caFile)
        }

        // The server is stopped: pyHanko, with only the CA certificate, no fetching and hard-fail revocation checks,
        // validates the signature and its time-stamp from what the file carries (the CRL covers the TSA too).
        let offline = try await runOffPool(python, ["-c", Self.pyHankoOfflineCheck, file, file + ".p7s", caFile])
        #expect(offline.status == 0, "\(offline.output)")
        #expect(offline.output.contains("EMBEDDED crls=1 ocsps=1"), "\(offline.output)")
        #expect(offline.output.contains("SIGNER True intact=True valid=True trusted=True"), "\(offline.output)")
        #expect(offline.output.contains("TIMESTAMP intact=True valid=True trusted=True"), "\(offline.output)")
        // Without the embedded revocation data the same check cannot trust it: the check can fail.
        let stripped = try await runOffPool(python, ["-c", Self.pyHankoOfflineCheck, file, file + ".p7s", caFile, "ignore-embedded"])
        #expect(stripped.output.contains("SIGNER False"), "\(stripped.output)")
    }

    /// pyHanko's CMS validation of a detached `.p7s` (argv: content, p7s, CA certificate PEM, and anything as a fourth
    /// argument to ignore the embedded revocation data), offline: trust in the CA only, the CRLs and OCSP responses
    /// from the file's `crls`, no fetching, revocation information required.
    static let pyHankoOfflineCheck = """
        import sys, asyncio
        from asn1crypto import cms, x509, pem
        from pyhanko_certvalidator import ValidationContext
        from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
        content, p7s, ca_path = sys.argv[1:4]
        data = open(ca_path, 'rb').read()
        if pem.detect(data):
            _, _, data = pem.unarmor(data)
        ca = x509.Certificate.load(data)
        signed_data = cms.ContentInfo.load(open(p7s, 'rb').read())['content']
        crls = [c.chosen for c in signed_data['crls'] if c.name == 'crl']
        ocsps = [c.chosen['other_rev_info'] for c in signed_data['crls'] if c.name == 'other']
        print('EMBEDDED crls=%d ocsps=%d' % (len(crls), len(ocsps)))
        if len(sys.argv) > 4:
            crls, ocsps = [], []
        def context():
            return ValidationContext(trust_roots=[ca], crls=crls, ocsps=ocsps, allow_fetching=False, revocation_mode='hard-fail')
        status = asyncio.run(async_validate_detached_cms(open(content, 'rb').read(), signed_data,
                                                         signer_validation_context=context(), ts_validation_context=context()))
        print('SIGNER %s intact=%s valid=%s trusted=%s' % (status.bottom_line, status.intact, status.valid, status.trusted))
        ts = status.timestamp_validity
        print('TIMESTAMP ' + ('none' if ts is None else 'intact=%s valid=%s trusted=%s' % (ts.intact, ts.valid, ts.trusted)))
        """

    @Test("B-LT for a revoked certificate: the CLI refuses with a clear error and writes nothing; the fetcher reports it revoked from the CRL and OCSP")
    func longTermRevoked() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture, pki: true) { server in
            var account = try await server.activate(name: "Ciro")
            _ = try await server.services.domain.lifecycle.revoke(credentialID: account.credential.id, reason: .keyCompromise, actor: "operator:test")
            let folder = try TestHSM.makeTemporaryDirectory()
            let file = folder.appendingPathComponent("void.txt").path
            try Data("void\n".utf8).write(to: URL(fileURLWithPath: file))
            let result = try await runOffPool(Self.sigillo, ["sign", file, "--level", "B-LT", "--server", server.baseURL, "--ca", server.tlsCAFile,
                                                             "--username", account.username, "--password-stdin"],
                                              input: Data("\(account.password)\n\(await account.nextOTP())\n".utf8))
            #expect(result.status != 0)
            #expect(result.output.contains("revoked"), "\(result.output)")
            #expect(!FileManager.default.fileExists(atPath: file + ".p7s"))

            // The client's own check, whatever the service says about the credential: CRL and OCSP both say revoked.
            let signer = try SignerCertificate(der: account.credential.certificateDER)
            let issuer = try RevocationFetcher.issuer(of: signer, in: [signer.der, try #require(try Self.derOfPEM(server.caFile))])
            #expect(signer.crlURLs == ["\(server.pkiBaseURL)/crl/ca.crl"])
            #expect(signer.ocspURLs == ["\(server.pkiBaseURL)/ocsp"])
            let publication = PublicationClient()
            let fetcher = RevocationFetcher(http: publication)
            await #expect { try await fetcher.validationData(signer: signer, issuer: issuer) } throws: { error in
                (error as? SignatureLevelError)?.code == .certificateRevoked && "\(error)".contains("CRL from")
            }
            // OCSP alone (a certificate naming only the responder) says so too.
            await #expect { _ = try await fetcher.ocsp(from: signer.ocspURLs[0], signer: signer, issuer: issuer) } throws: { error in
                (error as? SignatureLevelError)?.code == .certificateRevoked && "\(error)".contains("OCSP from")
            }
            try await publication.shutdown()
        }
    }

    // MARK: - Helpers

    static func verify(_ file: String, ca: String) async throws -> (status: Int32, output: String) {
        try await runOffPool("openssl", ["cms", "-verify", "-binary", "-content", file, "-in", file + ".p7s", "-inform", "DER", "-CAfile", ca, "-purpose", "any", "-out", "/dev/null"])
    }

    /// `openssl cms -verify` accepts `file.p7s`, `-cmsout -print` shows the signature-time-stamp attribute, and `openssl
    /// ts -verify` accepts the embedded token over the SHA-256 of the signature value. Returns the token.
    @discardableResult
    static func checkTimeStamped(_ file: String, server: LiveServer, folder: URL) async throws -> [UInt8] {
        let verify = try await Self.verify(file, ca: server.caFile)
        #expect(verify.status == 0 && verify.output.contains("Verification successful"), "\(file): \(verify.output)")
        let printed = try await runOffPool("openssl", ["cms", "-cmsout", "-print", "-inform", "DER", "-in", file + ".p7s"])
        #expect(printed.output.contains("id-smime-aa-timeStampToken") || printed.output.contains("1.2.840.113549.1.9.16.2.14"), "\(printed.output)")

        let signed = try SignedFile(path: file + ".p7s")
        let token = try #require(signed.timeStampToken)
        let tokenPath = folder.appendingPathComponent(URL(fileURLWithPath: file).lastPathComponent + ".tst").path
        try Data(token).write(to: URL(fileURLWithPath: tokenPath))
        let digest = SHA256.hash(data: signed.signatureValue).map { String(format: "%02x", $0) }.joined()
        let checked = try await runOffPool("openssl", ["ts", "-verify", "-in", tokenPath, "-token_in", "-digest", digest, "-CAfile", server.caFile])
        #expect(checked.status == 0 && checked.output.contains("Verification: OK"), "\(checked.output)")
        // Another digest is refused: the check can fail.
        let other = String(repeating: "00", count: 32)
        let refused = try await runOffPool("openssl", ["ts", "-verify", "-in", tokenPath, "-token_in", "-digest", other, "-CAfile", server.caFile])
        #expect(refused.status != 0, "\(refused.output)")
        return token
    }

    /// The first certificate of a PEM file, DER.
    static func derOfPEM(_ path: String) throws -> [UInt8]? {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        guard let begin = text.range(of: "-----BEGIN CERTIFICATE-----"), let end = text.range(of: "-----END CERTIFICATE-----", range: begin.upperBound..<text.endIndex) else { return nil }
        return Data(base64Encoded: String(text[begin.upperBound..<end.lowerBound]), options: .ignoreUnknownCharacters).map(Array.init)
    }
}

/// A detached CAdES `.p7s` read back with swift-asn1: what the tests check beyond openssl.
struct SignedFile {
    /// One `RevocationInfoChoice`: a CRL, or an OCSP response as `other` (`id-ri-ocsp-response`).
    struct Revocation {
        let ocsp: Bool
        let der: [UInt8]
    }

    let version: Int
    let certificates: [[UInt8]]
    let revocation: [Revocation]
    /// `SignerInfo.signature`'s content.
    let signatureValue: [UInt8]
    /// The `id-aa-signatureTimeStampToken` value, DER.
    let timeStampToken: [UInt8]?

    init(path: String) throws {
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let zero = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
        let one = ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)
        let contentInfo = try Self.children(try DER.parse(bytes))
        guard let signedDataNode = try Self.children(contentInfo[1]).first else { throw ASN1Error.invalidASN1Object(reason: "no SignedData") }
        let signedData = try Self.children(signedDataNode)
        self.version = try Int(derEncoded: signedData[0])
        self.certificates = try signedData.first { $0.identifier == zero }.map { try Self.children($0).map { Array($0.encodedBytes) } } ?? []
        self.revocation = try signedData.dropFirst(3).first { $0.identifier == one }.map { node in
            try Self.children(node).map { choice in
                guard choice.identifier == one else { return Revocation(ocsp: false, der: Array(choice.encodedBytes)) }
                let parts = try Self.children(choice)
                #expect(try ASN1ObjectIdentifier(derEncoded: parts[0]) == [1, 3, 6, 1, 5, 5, 7, 16, 2])
                return Revocation(ocsp: true, der: Array(parts[1].encodedBytes))
            }
        } ?? []
        guard let signerInfos = signedData.last, let first = try Self.children(signerInfos).first else { throw ASN1Error.invalidASN1Object(reason: "no SignerInfo") }
        let signerInfo = try Self.children(first)
        guard let signature = signerInfo.first(where: { $0.identifier == .octetString }) else { throw ASN1Error.invalidASN1Object(reason: "no signature") }
        self.signatureValue = Array(try ASN1OctetString(derEncoded: signature).bytes)
        var token: [UInt8]?
        if let unsigned = signerInfo.last, unsigned.identifier == one {
            for attribute in try Self.children(unsigned) {
                let parts = try Self.children(attribute)
                if try ASN1ObjectIdentifier(derEncoded: parts[0]) == [1, 2, 840, 113549, 1, 9, 16, 2, 14] {
                    token = try Self.children(parts[1]).first.map { Array($0.encodedBytes) }
                }
            }
        }
        self.timeStampToken = token
    }

    static func children(_ node: ASN1Node) throws -> [ASN1Node] {
        guard case .constructed(let nodes) = node.content else { throw ASN1Error.invalidASN1Object(reason: "expected a constructed node") }
        return Array(nodes)
    }
}
