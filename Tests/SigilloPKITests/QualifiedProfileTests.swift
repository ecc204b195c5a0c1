import Foundation
import PKCS11
import SigilloDomain
import SigilloPKI
import SigilloTestSupport
import SwiftASN1
import Testing
import X509

@Suite("Qualified certificate profile (EN 319 412-2/-5, AgID), issuing CA under an offline root, trusted-list entry")
struct QualifiedProfileTests {
    static let baseURL = "http://pki.example.it"

    static func profile() throws -> QualifiedCertificateProfile {
        try QualifiedCertificateProfile(
            policyOID: [1, 3, 6, 1, 4, 1, 99999, 19, 1], cpsURL: "https://www.example.it/cps.pdf",
            pds: [.init(url: "https://www.example.it/pds-en.pdf", language: "en"), .init(url: "https://www.example.it/pds-it.pdf", language: "it")],
            retentionPeriodYears: 20)
    }

    @Test("a holder certificate carries the policies, the QC statements and keyUsage nonRepudiation; openssl reads them")
    func holderProfile() async throws {
        let fixture = try TestToken()
        let profile = try Self.profile()
        let ca = try await CertificateAuthority.create(token: fixture.token, name: testCAName, now: Date(), profile: profile)
        let spki = try await fixture.token.generateKeyPair(id: "holder", algorithm: .ecP256)
        let holder = try await ca.issueHolderCertificate(publicKeySPKI: spki, holder: mario, notBefore: Date(), pkiBaseURL: Self.baseURL)

        // As swift-certificates and our types read them back.
        let keyUsage = try #require(holder.extensions.first { $0.oid == .X509ExtensionID.keyUsage })
        #expect(keyUsage.critical)
        #expect(try KeyUsage(keyUsage) == KeyUsage(nonRepudiation: true))
        let policiesExtension = try #require(holder.extensions.first { $0.oid == CertificatePolicies.oid })
        #expect(!policiesExtension.critical)
        let policies = try CertificatePolicies(policiesExtension)
        #expect(policies.identifiers == [[1, 3, 6, 1, 4, 1, 99999, 19, 1], [0, 4, 0, 194112, 1, 2], [1, 3, 76, 16, 6]])
        #expect(policies.policies[0].qualifiers == [.cps("https://www.example.it/cps.pdf")])
        let statementsExtension = try #require(holder.extensions.first { $0.oid == QCStatements.oid })
        #expect(!statementsExtension.critical)
        let statements = try QCStatements(statementsExtension)
        #expect(statements.statements == [
            .semantics([0, 4, 0, 194121, 1, 1]), .compliance, .type([[0, 4, 0, 1862, 1, 6, 1]]), .sscd,
            .pds([.init(url: "https://www.example.it/pds-en.pdf", language: "en"), .init(url: "https://www.example.it/pds-it.pdf", language: "it")]),
            .retentionPeriod(20),
        ])

        // As openssl prints them.
        let caPath = try write(ca.certificatePEM, "ca.pem", in: fixture.directory)
        let holderPath = try write(try CertificateAuthority.pem(of: holder), "holder.pem", in: fixture.directory)
        let text = try run("openssl", ["x509", "-in", holderPath, "-noout", "-text"])
        #expect(text.status == 0, "\(text.output)")
        #expect(text.output.contains("X509v3 Certificate Policies: \n                Policy: 1.3.6.1.4.1.99999.19.1\n                  CPS: https://www.example.it/cps.pdf\n                Policy: 0.4.0.194112.1.2\n                Policy: 1.3.76.16.6\n"), "\(text.output)")
        #expect(text.output.contains("X509v3 Key Usage: critical\n                Non Repudiation\n"), "\(text.output)")
        #expect(text.output.contains("qcStatements: \n"), "\(text.output)")
        #expect(text.output.contains("https://www.example.it/pds-en.pdf"), "\(text.output)")
        // OpenSSL has no printer for qcStatements: its ASN.1 parser lists the statement OIDs.
        let qcFile = fixture.directory.appendingPathComponent("qc.der")
        try Data(statementsExtension.value).write(to: qcFile)
        let parsed = try run("openssl", ["asn1parse", "-inform", "DER", "-in", qcFile.path])
        #expect(parsed.status == 0, "\(parsed.output)")
        for oid in ["1.3.6.1.5.5.7.11.2", "0.4.0.194121.1.1", "0.4.0.1862.1.1", "0.4.0.1862.1.6", "0.4.0.1862.1.6.1", "0.4.0.1862.1.4", "0.4.0.1862.1.5", "0.4.0.1862.1.3"] {
            #expect(parsed.output.contains(":\(oid)\n") || parsed.output.contains(oid), "\(oid) missing: \(parsed.output)")
        }
        #expect(parsed.output.contains(":https://www.example.it/pds-it.pdf") && parsed.output.contains(":it\n"), "\(parsed.output)")
        let verified = try run("openssl", ["verify", "-x509_strict", "-CAfile", caPath, holderPath])
        #expect(verified.status == 0, "\(verified.output)")
    }

    @Test("the extension types round-trip through DER, unknown statements and qualifiers kept")
    func roundTrip() throws {
        let policies = CertificatePolicies([
            .init([1, 2, 3], qualifiers: [.cps("https://x.example/cps"), .userNotice("Certificato qualificato")]),
            .init([2, 5, 29, 32, 0]),
        ])
        var serializer = DER.Serializer()
        try serializer.serialize(policies)
        #expect(try CertificatePolicies(derEncoded: serializer.serializedBytes) == policies)

        let other = try ASN1Any(erasing: ASN1UTF8String("free text"))
        let statements = QCStatements([.compliance, .sscd, .type([QCStatements.typeESeal]), .retentionPeriod(7), .semantics(QCStatements.semanticsLegalPerson),
                                       .pds([.init(url: "https://x.example/pds", language: "en")]), .other([1, 2, 3, 4], other), .other([1, 2, 3, 5], nil)])
        serializer = DER.Serializer()
        try serializer.serialize(statements)
        #expect(try QCStatements(derEncoded: serializer.serializedBytes) == statements)

        // Dotted OIDs, also under arc 2 with a second arc of 40 or more (swift-asn1's description gets those wrong).
        #expect(QualifiedCertificateProfile.developmentPolicyOID.dotted == "2.999.19.1")
        #expect(ASN1ObjectIdentifier.X509ExtensionID.keyUsage.dotted == "2.5.29.15")
        #expect(QualifiedCertificateProfile.agidCertificatePolicy.dotted == "1.3.76.16.6")
        #expect(QCStatements.semanticsNaturalPerson.dotted == "0.4.0.194121.1.1")

        // Empty extensions are refused when building, and not accepted when parsing.
        #expect(throws: SigilloError.self) { try CertificatePolicies([]).makeCertificateExtension() }
        #expect(throws: SigilloError.self) { try QCStatements([]).makeCertificateExtension() }
        #expect(throws: (any Error).self) { try CertificatePolicies(derEncoded: [0x30, 0x00]) }
        #expect(throws: (any Error).self) { try QCStatements(derEncoded: [0x30, 0x03, 0x06, 0x01]) }
        #expect(throws: (any Error).self) { try CertificatePolicies(Certificate.Extension(oid: QCStatements.oid, critical: false, value: [0x30, 0x00])) }
    }

    @Test("a profile a provider gets wrong is refused with a reason")
    func badProfiles() throws {
        let en = QCStatements.PDSLocation(url: "https://x.example/pds-en.pdf", language: "en")
        func refused(_ make: () throws -> QualifiedCertificateProfile, _ reason: String) {
            do {
                _ = try make()
                Issue.record("accepted a profile with \(reason)")
            } catch let error as SigilloError {
                #expect(error.code == .invalidRequest && error.message.contains(reason), "\(error)")
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
        refused({ try QualifiedCertificateProfile(policyOID: QualifiedCertificateProfile.qcpNaturalQSCD, pds: [en]) }, "must be its own")
        refused({ try QualifiedCertificateProfile(policyOID: [1, 2, 3], pds: []) }, "at least one")
        refused({ try QualifiedCertificateProfile(policyOID: [1, 2, 3], pds: [.init(url: "https://x.example/it", language: "it")]) }, "in English")
        refused({ try QualifiedCertificateProfile(policyOID: [1, 2, 3], pds: [en, en]) }, "one PDS per language")
        refused({ try QualifiedCertificateProfile(policyOID: [1, 2, 3], pds: [.init(url: "ftp://x.example/pds", language: "en")]) }, "http or https")
        refused({ try QualifiedCertificateProfile(policyOID: [1, 2, 3], pds: [.init(url: "https://x.example/pds", language: "EN")]) }, "two lower-case")
        refused({ try QualifiedCertificateProfile(policyOID: [1, 2, 3], cpsURL: "not a url", pds: [en]) }, "CPS URL")
        refused({ try QualifiedCertificateProfile(policyOID: [1, 2, 3], pds: [en], retentionPeriodYears: 0) }, "retention period")
        // Without a QSCD: QCP-n and no QcSSCD.
        let noQSCD = try QualifiedCertificateProfile(policyOID: [1, 2, 3], pds: [en], qscd: false, agidPolicy: false)
        #expect(noQSCD.certificatePolicies.identifiers == [[1, 2, 3], QualifiedCertificateProfile.qcpNatural])
        #expect(!noQSCD.qcStatements.statements.contains(.sscd))
    }

    @Test("issuing CA: key and PKCS#10 from the token, an openssl root certifies it, holder → issuing CA → root verifies")
    func issuingCAUnderRoot() async throws {
        let fixture = try TestToken()
        let token = fixture.token
        let root = try OfflineRoot(in: fixture.directory.appendingPathComponent("root"))
        let name = try DistinguishedName {
            CountryName("IT")
            OrganizationName("Sigillo Test")
            CommonName("Sigillo Test Qualified CA")
        }
        _ = try await token.generateKeyPair(id: "sigillo-ca", algorithm: .ecP384)
        let request = try await CertificateAuthority.signingRequest(token: token, keyID: "sigillo-ca", name: name)
        #expect(request.publicKey == (try Certificate.PublicKey(derEncoded: try await token.publicKey(id: "sigillo-ca"))))
        let requestFile = try write(try request.serializeAsPEM().pemString, "ca.csr", in: fixture.directory)
        let issuedFile = fixture.directory.appendingPathComponent("ca.pem").path
        try root.certify(requestFile: requestFile, out: issuedFile)
        let issued = try Certificate(pemEncoded: try String(contentsOfFile: issuedFile, encoding: .utf8))
        let rootCertificate = try Certificate(pemEncoded: try String(contentsOfFile: root.certificateFile, encoding: .utf8))
        #expect(issued.subject == name && issued.issuer == rootCertificate.subject)

        let ca = try await CertificateAuthority.importing(token: token, keyID: "sigillo-ca", certificate: issued, chain: [rootCertificate], now: Date(), profile: try Self.profile())
        #expect(ca.chainDER.count == 2)
        let spki = try await token.generateKeyPair(id: "holder", algorithm: .ecP256)
        let holder = try await ca.issueHolderCertificate(publicKeySPKI: spki, holder: mario, notBefore: Date(), pkiBaseURL: Self.baseURL)
        let holderFile = try write(try CertificateAuthority.pem(of: holder), "holder.pem", in: fixture.directory)
        let verified = try run("openssl", ["verify", "-x509_strict", "-CAfile", root.certificateFile, "-untrusted", issuedFile, holderFile])
        #expect(verified.status == 0 && verified.output.contains("\(holderFile): OK"), "\(verified.output)")
        // Under a root, the CA issuers URL is the whole chain (certs-only CMS), which openssl reads.
        let access = try #require(try holder.extensions.authorityInformationAccess)
        #expect(access.contains { $0.method == .issuingCA && $0.location == .uniformResourceIdentifier("\(Self.baseURL)/ca.p7c") }, "\(access)")
        let bundleFile = fixture.directory.appendingPathComponent("ca.p7c")
        try Data(ca.chainBundle).write(to: bundleFile)
        let bundle = try run("openssl", ["pkcs7", "-inform", "DER", "-in", bundleFile.path, "-print_certs"])
        #expect(bundle.status == 0, "\(bundle.output)")
        let printed = try CertificateAuthority.certificates(pem: bundle.output, what: "openssl's output")
        #expect(Set(printed.map { try! CertificateAuthority.der(of: $0) }) == Set(ca.chainDER))
        // Without the issuing CA openssl cannot get to the root; with only the issuing CA as anchor it is no root.
        let noIntermediate = try run("openssl", ["verify", "-CAfile", root.certificateFile, holderFile])
        #expect(noIntermediate.status != 0, "\(noIntermediate.output)")

        // What import refuses: another root, no chain for a certificate that is not self-signed, a certificate for
        // another key, an expired chain.
        let otherRoot = try OfflineRoot(in: fixture.directory.appendingPathComponent("other-root"), commonName: "Other Root")
        let other = try Certificate(pemEncoded: try String(contentsOfFile: otherRoot.certificateFile, encoding: .utf8))
        await #expect(throws: SigilloError.self) {
            _ = try await CertificateAuthority.importing(token: token, keyID: "sigillo-ca", certificate: issued, chain: [other], now: Date())
        }
        await #expect(throws: SigilloError.self) {
            _ = try await CertificateAuthority.importing(token: token, keyID: "sigillo-ca", certificate: issued, chain: [], now: Date())
        }
        _ = try await token.generateKeyPair(id: "other-ca", algorithm: .ecP384)
        await #expect(throws: SigilloError.self) {
            _ = try await CertificateAuthority.importing(token: token, keyID: "other-ca", certificate: issued, chain: [rootCertificate], now: Date())
        }
        await #expect(throws: SigilloError.self) {
            _ = try await CertificateAuthority.importing(token: token, keyID: "sigillo-ca", certificate: issued, chain: [rootCertificate], now: Date().addingTimeInterval(40 * 365 * 86400))
        }
        // A holder certificate is no CA.
        #expect(throws: SigilloError.self) { try CertificateAuthority(token: token, keyID: "holder", certificate: holder) }
        // PEM files: several certificates in order; garbage and other objects refused.
        let both = try CertificateAuthority.certificates(pem: ca.certificatePEM + (try CertificateAuthority.pem(of: rootCertificate)), what: "test")
        #expect(both == [issued, rootCertificate])
        #expect(throws: SigilloError.self) { try CertificateAuthority.certificates(pem: "no pem here", what: "test") }
        #expect(throws: SigilloError.self) { try CertificateAuthority.certificates(pem: try request.serializeAsPEM().pemString, what: "test") }
    }

    @Test("the trusted-list entry: CA/QC, granted, the CA's identity, qualifiers for the provider's policy")
    func trustedListEntry() async throws {
        let fixture = try TestToken()
        let ca = try await CertificateAuthority.create(token: fixture.token, name: testCAName, now: Date())
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        let entry = try TrustedListEntry(certificate: ca.certificate, names: ["en": "Sigillo <Test> & CA", "it": "CA di test"],
                                         policyOID: [1, 3, 6, 1, 4, 1, 99999, 19, 1], statusStartingTime: start)
        let xml = try entry.xml()
        #expect(xml.hasPrefix(#"<?xml version="1.0" encoding="UTF-8"?>"#))
        #expect(xml.contains("<tsl:ServiceTypeIdentifier>http://uri.etsi.org/TrstSvc/Svctype/CA/QC</tsl:ServiceTypeIdentifier>"))
        #expect(xml.contains("<tsl:ServiceStatus>http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted</tsl:ServiceStatus>"))
        #expect(xml.contains("<tsl:StatusStartingTime>2026-09-21T"), "\(xml)")
        #expect(xml.contains(#"<tsl:Name xml:lang="en">Sigillo &lt;Test&gt; &amp; CA</tsl:Name>"#))
        #expect(xml.contains("<tsl:X509Certificate>\(Data(ca.certificateDER).base64EncodedString())</tsl:X509Certificate>"))
        #expect(xml.contains("<tsl:X509SKI>\(Data(ca.keyIdentifier).base64EncodedString())</tsl:X509SKI>"))
        for qualifier in ["QCStatement", "QCForESig", "QCWithQSCD", "QCQSCDManagedOnBehalf"] {
            #expect(xml.contains(#"<ecc:Qualifier uri="http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/\#(qualifier)"/>"#), "\(qualifier)")
        }
        #expect(xml.contains("<xades:Identifier>1.3.6.1.4.1.99999.19.1</xades:Identifier>"))
        #expect(xml.contains("SvcInfoExt/ForeSignatures</tsl:URI>"))
        // An XML parser finds it well-formed.
        let file = try write(xml, "entry.xml", in: fixture.directory)
        let lint = try run("python3", ["-c", "import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])", file])
        #expect(lint.status == 0, "\(lint.output)")

        let spki = try await fixture.token.generateKeyPair(id: "holder", algorithm: .ecP256)
        let holder = try await ca.issueHolderCertificate(publicKeySPKI: spki, holder: mario, notBefore: Date(), pkiBaseURL: Self.baseURL)
        #expect(throws: SigilloError.self) { try TrustedListEntry(certificate: holder, names: ["en": "x"], policyOID: [1, 2], statusStartingTime: start) }
        #expect(throws: SigilloError.self) { try TrustedListEntry(certificate: ca.certificate, names: [:], policyOID: [1, 2], statusStartingTime: start) }
        #expect(throws: SigilloError.self) { try TrustedListEntry(certificate: ca.certificate, names: ["english": "x"], policyOID: [1, 2], statusStartingTime: start) }
    }
}
