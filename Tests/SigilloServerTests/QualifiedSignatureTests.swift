import CSCClient
import Foundation
import Logging
import PKCS11
import SigilloDomain
import SigilloPKI
import SigilloServer
import SigilloTestSupport
import Testing
import X509

@Suite("Qualified signatures: issuing CA under an offline root, trusted list, pyHanko's qualification assessor")
struct QualifiedSignatureTests {
    static let script = repositoryRoot.appendingPathComponent("Tests/Interop/qualified.py").path
    static let python = repositoryRoot.appendingPathComponent(".venv/bin/python").path

    /// An issuing CA as production makes it: key in the token, PKCS#10 signed by the token, certified by an openssl
    /// root in `directory/root`, installed with the root as its chain (`configuration.caChain`).
    static func issuingCA(token: Token, keyID: String, name: DistinguishedName, configuration: ServerConfiguration, in directory: URL) async throws -> CertificateAuthority {
        _ = try await token.generateKeyPair(id: keyID, algorithm: .ecP384)
        let request = try await CertificateAuthority.signingRequest(token: token, keyID: keyID, name: name)
        let requestFile = directory.appendingPathComponent("ca.csr").path
        try request.serializeAsPEM().pemString.write(toFile: requestFile, atomically: true, encoding: .utf8)
        let root = try OfflineRoot(in: directory.appendingPathComponent("root"))
        let issuedFile = directory.appendingPathComponent("ca-issued.pem").path
        try root.certify(requestFile: requestFile, out: issuedFile)
        let rootPEM = try String(contentsOfFile: root.certificateFile, encoding: .utf8)
        try rootPEM.write(toFile: configuration.caChain, atomically: true, encoding: .utf8)
        return try await CertificateAuthority.importing(
            token: token, keyID: keyID, certificate: try Certificate(pemEncoded: try String(contentsOfFile: issuedFile, encoding: .utf8)),
            chain: [try Certificate(pemEncoded: rootPEM)], now: Date(), profile: try configuration.holderProfile())
    }

    /// Runs `qualified.py` and decodes the JSON line it prints last (pyHanko's warnings may come around it).
    static func qualified(_ arguments: [String], environment: [String: String]? = nil) async throws -> [String: Any] {
        let result = try await runOffPool(self.python, [self.script] + arguments, environment: environment)
        try #require(result.status == 0, "\(result.output)")
        let line = try #require(result.output.split(separator: "\n").last { $0.hasPrefix("{") }, "\(result.output)")
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(result.output)")
    }

    @Test("a holder certificate and a PAdES signature through the CSC API are qualified for a validator that knows only the trusted list; an unlisted CA's are not")
    func qualifiedForTheTrustedList() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.python), "run `make venv` first (make test does)")
        try #require(FileManager.default.isExecutableFile(atPath: AdminCLITests.binary), "build the executable first: swift build")
        let fixture = try TestToken()
        try await LiveServer.with(fixture, pki: true, offlineRoot: true) { server in
            let output = try TestHSM.makeTemporaryDirectory()
            let account = try await server.activate(name: "Paola", keyAlgorithm: .ecP256, device: .totp)

            // credentials/info with certificates "chain": holder, issuing CA, root.
            let login = try await server.post("/csc/v1/auth/login", basic: (account.username, account.password))
            let accessToken = try #require(login.json["access_token"] as? String, "\(login.json)")
            let info = try await server.post("/csc/v1/credentials/info", ["credentialID": account.credential.id, "certificates": "chain"], bearer: accessToken)
            let encoded = try #require((info.json["cert"] as? [String: Any])?["certificates"] as? [String], "\(info.json)")
            let chain = try encoded.map { try Certificate(derEncoded: Array(try #require(Data(base64Encoded: $0)))) }
            try #require(chain.count == 3, "\(encoded.count) certificates")
            let rootFile = server.directory.appendingPathComponent("root/root.pem").path
            let root = try Certificate(pemEncoded: try String(contentsOfFile: rootFile, encoding: .utf8))
            #expect(chain[0] == (try Certificate(derEncoded: account.credential.certificateDER)))
            #expect(chain[1] == server.services.ca.certificate && chain[1].issuer == root.subject)
            #expect(chain[2] == root)
            let holderFile = output.appendingPathComponent("holder.pem").path
            try CertificateAuthority.pem(of: chain[0]).write(toFile: holderFile, atomically: true, encoding: .utf8)
            let verified = try await runOffPool("openssl", ["verify", "-x509_strict", "-CAfile", rootFile, "-untrusted", server.caFile, holderFile])
            #expect(verified.status == 0, "\(verified.output)")

            // The CA issuers URL gives the whole chain too: a certs-only CMS message on the publication listener.
            let access = try #require(try chain[0].extensions.authorityInformationAccess)
            #expect(access.contains { $0.method == .issuingCA && $0.location == .uniformResourceIdentifier("\(server.pkiBaseURL)/ca.p7c") }, "\(access)")
            let bundleFile = output.appendingPathComponent("ca.p7c").path
            let fetched = try await runOffPool("curl", ["-sf", "-o", bundleFile, "\(server.pkiBaseURL)/ca.p7c"])
            try #require(fetched.status == 0, "\(fetched.output)")
            let bundle = try await runOffPool("openssl", ["pkcs7", "-inform", "DER", "-in", bundleFile, "-print_certs", "-noout"])
            #expect(bundle.status == 0, "\(bundle.output)")
            #expect(bundle.output.components(separatedBy: "subject=").count - 1 == 2, "\(bundle.output)")
            #expect(bundle.output.contains("CN = Sigillo Test CA") && bundle.output.contains("CN = Sigillo Test Root CA"), "\(bundle.output)")

            // The trusted-list entry, as `sigillo ca trusted-list` writes it for this CA.
            let entryFile = output.appendingPathComponent("entry.xml").path
            var environment = ProcessInfo.processInfo.environment
            environment["SIGILLO_CA_CERTIFICATE"] = server.caFile
            let written = try await runOffPool(AdminCLITests.binary, ["ca", "trusted-list", "--out", entryFile], environment: environment)
            try #require(written.status == 0, "\(written.output)")

            // The holder certificate: qualified, for e-signatures, key in a QSCD managed on the holder's behalf.
            let assessed = try await Self.qualified(["assess", "--entry", entryFile, "--cert", holderFile, "--trust", server.caFile, "--out", output.path])
            #expect(assessed["path"] as? String == "ok", "\(assessed)")
            #expect(assessed["qualified"] as? Bool == true, "\(assessed)")
            #expect(assessed["type"] as? String == "QC_ESIGN", "\(assessed)")
            #expect(assessed["qscd"] as? String == "QSCD_DELEGATED", "\(assessed)")
            #expect(assessed["service"] as? String == "Sigillo Test CA", "\(assessed)")
            // The same from the root alone: pyHanko fetches the issuing CA from the CA issuers URL.
            let fromRoot = try await Self.qualified(["assess", "--entry", entryFile, "--cert", holderFile, "--trust", rootFile, "--fetch", "--out", output.path])
            #expect(fromRoot["path"] as? String == "ok" && fromRoot["qualified"] as? Bool == true, "\(fromRoot)")

            // A CA that is not on the list, same name and profile: its certificate is valid (PKIX) and not qualified.
            let unlisted = try await CertificateAuthority.create(token: fixture.token, keyID: "unlisted-ca", name: server.services.ca.certificate.subject, now: Date())
            let spki = try await fixture.token.generateKeyPair(id: "unlisted-holder", algorithm: .ecP256)
            let identity = HolderIdentity(givenName: "Paola", surname: "Rossi", fiscalCode: TestData.fiscalCode(), email: nil)
            let other = try await unlisted.issueHolderCertificate(publicKeySPKI: spki, holder: identity, notBefore: Date(), pkiBaseURL: server.pkiBaseURL)
            let otherFile = output.appendingPathComponent("unlisted-holder.pem").path
            try CertificateAuthority.pem(of: other).write(toFile: otherFile, atomically: true, encoding: .utf8)
            let unlistedFile = output.appendingPathComponent("unlisted-ca.pem").path
            try unlisted.certificatePEM.write(toFile: unlistedFile, atomically: true, encoding: .utf8)
            let notQualified = try await Self.qualified(["assess", "--entry", entryFile, "--cert", otherFile, "--trust", unlistedFile, "--out", output.path])
            #expect(notQualified["path"] as? String == "ok", "\(notQualified)")
            #expect(notQualified["qualified"] as? Bool == false, "\(notQualified)")
            #expect(notQualified["service"] is NSNull, "\(notQualified)")

            // A PAdES signature through the CSC v1 routes, validated (EN 319 102-1) with the trusted list as the only
            // trust: a qualified electronic signature.
            var signing = ProcessInfo.processInfo.environment
            signing["SIGILLO_PASSWORD"] = account.password
            signing["SIGILLO_TOTP_SECRET"] = Base32.encode(account.secret, padding: false)
            signing["SIGILLO_TOTP_LAST_STEP"] = String(try #require(account.totp.lastStep))
            let pades = try await Self.qualified([
                "pades", "--entry", entryFile, "--out", output.path, "--url", server.baseURL, "--tls-ca", server.tlsCAFile,
                "--username", account.username, "--credential", account.credential.id,
            ], environment: signing)
            #expect(pades["indication"] as? String == "PASSED", "\(pades)")
            #expect(pades["chain"] as? Int == 3, "\(pades)")
            #expect(pades["qualified"] as? Bool == true, "\(pades)")
            #expect(pades["type"] as? String == "QC_ESIGN", "\(pades)")
            #expect(pades["qscd"] as? String == "QSCD_DELEGATED", "\(pades)")
        }
    }

    @Test("a server refuses to start with a chain that does not validate its CA")
    func wrongChainRefused() async throws {
        let fixture = try TestToken()
        let (configuration, _, logger) = try await LiveServer.services(token: fixture.token, in: fixture.directory, offlineRoot: true)
        let other = try OfflineRoot(in: fixture.directory.appendingPathComponent("other-root"), commonName: "Other Root")
        var wrong = configuration
        wrong.caChain = other.certificateFile
        await #expect(throws: ConfigurationError.self) {
            _ = try await SigilloServices.open(configuration: wrong, token: fixture.token, logger: logger)
        }
        wrong.caChain = try Self.write("not a certificate", in: fixture.directory)
        await #expect(throws: ConfigurationError.self) {
            _ = try await SigilloServices.open(configuration: wrong, token: fixture.token, logger: logger)
        }
        // The right chain opens (and a missing chain file is a self-signed CA's case: the CA alone, not validated).
        _ = try await SigilloServices.open(configuration: configuration, token: fixture.token, logger: logger)
    }

    @Test("qualifiedProfile and caChain in the configuration: defaults, a provider's values, mistakes refused")
    func configuration() throws {
        let defaults = try ServerConfiguration.load(path: nil, environment: [:])
        #expect(defaults.caChain == "certs/ca-chain.pem")
        let development = try defaults.holderProfile()
        #expect(development.policyOID.dotted == "2.999.19.1" && development.qscd && development.agidPolicy)
        #expect(development.pds == [.init(url: "http://127.0.0.1:8080/pds/pds-en.pdf", language: "en"), .init(url: "http://127.0.0.1:8080/pds/pds-it.pdf", language: "it")])
        #expect(try ServerConfiguration.load(path: nil, environment: ["SIGILLO_CA_CHAIN": "/etc/sigillo/chain.pem"]).caChain == "/etc/sigillo/chain.pem")

        let json = """
            {"caChain": "/etc/sigillo/chain.pem", "qualifiedProfile": {"policyOID": "1.3.6.1.4.1.99999.1.2", "cpsURL": "https://www.example.it/cps",
             "pds": [{"url": "https://www.example.it/pds-en.pdf", "language": "en"}], "qscd": false, "agidPolicy": false, "retentionPeriodYears": 20,
             "serviceName": {"en": "Example CA", "it": "CA Example"}}}
            """
        let configuration = try JSONDecoder().decode(ServerConfiguration.self, from: Data(json.utf8))
        #expect(configuration.caChain == "/etc/sigillo/chain.pem")
        #expect(configuration.qualifiedProfile.serviceName == ["en": "Example CA", "it": "CA Example"])
        let profile = try configuration.holderProfile()
        #expect(profile.certificatePolicies.identifiers == [[1, 3, 6, 1, 4, 1, 99999, 1, 2], QualifiedCertificateProfile.qcpNatural])
        #expect(profile.qcStatements.statements.contains(.retentionPeriod(20)) && !profile.qcStatements.statements.contains(.sscd))

        // Unknown fields are refused; a bad OID or URL is found when the profile is made (at start).
        for bad in [#"{"qualifiedProfile": {"policyOid": "1.2.3"}}"#, #"{"qualifiedProfile": {"pds": [{"url": "https://x.example/p", "lang": "en"}]}}"#] {
            #expect(throws: (any Error).self, "\(bad)") { try JSONDecoder().decode(ServerConfiguration.self, from: Data(bad.utf8)) }
        }
        for (bad, reason) in [(#"{"qualifiedProfile": {"policyOID": "not.an.oid"}}"#, "dotted OID"),
                              (#"{"pkiBaseURL": "not a url"}"#, "PDS URL"),
                              (#"{"qualifiedProfile": {"policyOID": "0.4.0.194112.1.2"}}"#, "its own"),
                              (#"{"qualifiedProfile": {"pds": [{"url": "https://x.example/p", "language": "it"}]}}"#, "English")] {
            let decoded = try JSONDecoder().decode(ServerConfiguration.self, from: Data(bad.utf8))
            #expect {
                try decoded.holderProfile()
            } throws: { error in
                (error as? ConfigurationError)?.description.contains(reason) == true
            }
        }
    }

    static func write(_ text: String, in directory: URL) throws -> String {
        let url = directory.appendingPathComponent("file-\(UUID().uuidString.prefix(8)).pem")
        try Data(text.utf8).write(to: url)
        return url.path
    }

    @Test("sigillo ca csr, import and trusted-list: the key stays in the token, the openssl root signs offline")
    func caCommands() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: AdminCLITests.binary), "build the executable first: swift build")
        let fixture = try TestToken.unopened()
        let directory = fixture.directory
        let certs = directory.appendingPathComponent("certs")
        try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true)
        // One copy of the token for every child run: what `ca csr` generates, `ca import` finds.
        let environment = AdminCLITests.serveEnvironment(try fixture.isolatedEnvironment(), folder: directory, module: TestHSM.modulePath,
                                                         token: fixture.label, pinFile: fixture.pinFile, sessions: 1)
        func sigillo(_ arguments: [String]) async throws -> (status: Int32, output: String) {
            try await runOffPool(AdminCLITests.binary, ["ca"] + arguments, environment: environment)
        }
        let requestFile = certs.appendingPathComponent("ca.csr").path
        let badIdentifier = try await sigillo(["csr", "--organization-identifier", "12345", "--out", requestFile])
        #expect(badIdentifier.status != 0 && badIdentifier.output.contains("VATIT-"), "\(badIdentifier.output)")
        let csr = try await sigillo(["csr", "--algorithm", "ecdsa-p256", "--organization", "Sigillo Test", "--organization-identifier", "VATIT-12345678901", "--out", requestFile])
        #expect(csr.status == 0 && csr.output.contains("generated in the token"), "\(csr.output)")
        let text = try await runOffPool("openssl", ["req", "-in", requestFile, "-noout", "-text", "-verify"])
        #expect(text.status == 0, "\(text.output)")
        #expect(text.output.contains("organizationIdentifier = VATIT-12345678901") && text.output.contains("CN = Sigillo Test Qualified Signature CA"), "\(text.output)")
        #expect(text.output.contains("prime256v1"), "\(text.output)")
        // Again: the same key, a new request.
        let again = try await sigillo(["csr", "--organization", "Sigillo Test", "--out", requestFile + ".2"])
        #expect(again.status == 0 && again.output.contains("in the token already"), "\(again.output)")
        // Between csr and import, init does not make a self-signed CA over the waiting key.
        let early = try await sigillo(["init"])
        #expect(early.status != 0 && early.output.contains("sigillo ca import"), "\(early.output)")

        let root = try OfflineRoot(in: directory.appendingPathComponent("root"))
        let issuedFile = directory.appendingPathComponent("issued.pem").path
        try root.certify(requestFile: requestFile, out: issuedFile)
        let noChain = try await sigillo(["import", issuedFile])
        #expect(noChain.status != 0 && noChain.output.contains("--chain"), "\(noChain.output)")
        let other = try OfflineRoot(in: directory.appendingPathComponent("other-root"), commonName: "Other Root")
        let wrongRoot = try await sigillo(["import", issuedFile, "--chain", other.certificateFile])
        #expect(wrongRoot.status != 0 && wrongRoot.output.contains("does not chain"), "\(wrongRoot.output)")
        #expect(!FileManager.default.fileExists(atPath: certs.appendingPathComponent("ca.pem").path))

        let imported = try await sigillo(["import", issuedFile, "--chain", root.certificateFile])
        #expect(imported.status == 0, "\(imported.output)")
        let caFile = certs.appendingPathComponent("ca.pem").path
        let chainFile = certs.appendingPathComponent("ca-chain.pem").path
        let tsaFile = certs.appendingPathComponent("tsa.pem").path
        #expect(try String(contentsOfFile: chainFile, encoding: .utf8) == (try String(contentsOfFile: root.certificateFile, encoding: .utf8)))
        // The TSA the import set up is the issuing CA's: its chain goes to the root too.
        let tsa = try await runOffPool("openssl", ["verify", "-x509_strict", "-CAfile", root.certificateFile, "-untrusted", caFile, tsaFile])
        #expect(tsa.status == 0, "\(tsa.output)")
        let initialized = try await sigillo(["init"])
        #expect(initialized.status == 0 && initialized.output.contains("CA already set up"), "\(initialized.output)")
        let later = try await sigillo(["csr", "--out", requestFile + ".3"])
        #expect(later.status != 0 && later.output.contains("installed already"), "\(later.output)")

        let entry = try await sigillo(["trusted-list", "--status-start", "2026-12-01T00:00:00Z"])
        #expect(entry.status == 0, "\(entry.output)")
        let ca = try Certificate(pemEncoded: try String(contentsOfFile: caFile, encoding: .utf8))
        #expect(entry.output.contains("<tsl:X509Certificate>\(Data(try CertificateAuthority.der(of: ca)).base64EncodedString())</tsl:X509Certificate>"), "\(entry.output)")
        #expect(entry.output.contains("<tsl:StatusStartingTime>2026-12-01T00:00:00Z</tsl:StatusStartingTime>"), "\(entry.output)")
        #expect(entry.output.contains("<xades:Identifier>2.999.19.1</xades:Identifier>"), "\(entry.output)")
        let badStart = try await sigillo(["trusted-list", "--status-start", "yesterday"])
        #expect(badStart.status != 0 && badStart.output.contains("ISO 8601"), "\(badStart.output)")
    }
}
