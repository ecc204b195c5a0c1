import Crypto
import Foundation
import PKCS11
import SigilloDomain
import SigilloPKI
import SigilloSQLite
import SigilloTestSupport
import Testing
import X509

/// `openssl x509 -text` date format: `Nov  3 09:05:00 2026 GMT`.
func opensslDate(_ date: Date) -> String {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    let day = c.day! < 10 ? " \(c.day!)" : "\(c.day!)"
    return String(format: "%@ %@ %02d:%02d:%02d %d GMT", months[c.month! - 1], day, c.hour!, c.minute!, c.second!, c.year!)
}

func write(_ text: String, _ name: String, in directory: URL) throws -> String {
    let url = directory.appendingPathComponent(name)
    try Data(text.utf8).write(to: url)
    return url.path
}

let testCAName = try! DistinguishedName {
    CountryName("IT")
    OrganizationName("Sigillo Test")
    CommonName("Sigillo Test CA")
}

let mario = HolderIdentity(givenName: "Mario", surname: "Rossi", fiscalCode: "rssmra80a01h501u", email: "mario.rossi@example.it")

@Suite("Certificate authority: CA in the token, holder certificates")
struct CertificateAuthorityTests {
    @Test("CA creation and holder certificates accepted by openssl", arguments: [KeyAlgorithm.ecP384, .rsa3072])
    func createAndIssue(caAlgorithm: KeyAlgorithm) async throws {
        let fixture = try TestToken()
        let token = fixture.token
        let now = Date()
        let ca = try await CertificateAuthority.create(token: token, algorithm: caAlgorithm, name: testCAName, now: now)

        // The CA certificate.
        let caCert = ca.certificate
        #expect(caCert.subject == testCAName && caCert.issuer == testCAName)
        #expect(caCert.signatureAlgorithm == (caAlgorithm.isRSA ? .sha256WithRSAEncryption : .ecdsaWithSHA384))
        #expect(caCert.publicKey.isValidSignature(caCert.signature, for: caCert), "self-signature does not verify")
        let constraints = try #require(caCert.extensions.first { $0.oid == .X509ExtensionID.basicConstraints })
        #expect(constraints.critical)
        #expect(try BasicConstraints(constraints) == .isCertificateAuthority(maxPathLength: 0))
        let keyUsageExtension = try #require(caCert.extensions.first { $0.oid == .X509ExtensionID.keyUsage })
        #expect(keyUsageExtension.critical)
        #expect(try KeyUsage(keyUsageExtension) == KeyUsage(keyCertSign: true, cRLSign: true))
        let ski = try #require(try caCert.extensions.subjectKeyIdentifier)
        #expect(try caCert.extensions.authorityKeyIdentifier?.keyIdentifier == ski.keyIdentifier)
        #expect(Array(ski.keyIdentifier) == ca.keyIdentifier)
        #expect(caCert.notValidAfter.timeIntervalSince(caCert.notValidBefore) > 3650 * 86400)

        // The key is the token's, and stays there.
        let tokenKey = try await token.publicKey(id: "sigillo-ca")
        #expect(try Certificate.PublicKey(derEncoded: tokenKey) == caCert.publicKey)
        #expect(try await token.keyAlgorithm(id: "sigillo-ca") == caAlgorithm)
        try await ca.checkKeyInToken()
        try await Self.expectNotExtractable(fixture, keyID: "sigillo-ca", isRSA: caAlgorithm.isRSA)

        let caPath = try write(ca.certificatePEM, "ca.pem", in: fixture.directory)
        let caText = try run("openssl", ["x509", "-in", caPath, "-noout", "-text"])
        #expect(caText.status == 0, "\(caText.output)")
        #expect(caText.output.contains("CA:TRUE, pathlen:0"), "\(caText.output)")
        #expect(caText.output.contains("Certificate Sign, CRL Sign"), "\(caText.output)")

        // Holder certificates for EC and RSA keys generated in the same token.
        let baseURL = "https://sign.example.it"
        var serials: [Certificate.SerialNumber] = []
        for holderAlgorithm in [KeyAlgorithm.ecP256, .rsa2048] {
            let holderSPKI = try await token.generateKeyPair(id: "holder-\(holderAlgorithm.rawValue)", algorithm: holderAlgorithm)
            let holderCert = try await ca.issueHolderCertificate(publicKeySPKI: holderSPKI, holder: mario, notBefore: now, pkiBaseURL: baseURL + "/")
            serials.append(holderCert.serialNumber)
            #expect(holderCert.publicKey == (try Certificate.PublicKey(derEncoded: holderSPKI)))
            #expect(caCert.publicKey.isValidSignature(holderCert.signature, for: holderCert), "swift-certificates rejects the holder certificate")
            #expect(holderCert.issuer == caCert.subject)
            #expect(holderCert.serialNumber.bytes.count == 16 && holderCert.serialNumber.bytes.first! & 0x80 == 0)
            #expect(try holderCert.extensions.authorityKeyIdentifier?.keyIdentifier == ski.keyIdentifier)

            let holderPath = try write(try CertificateAuthority.pem(of: holderCert), "holder-\(holderAlgorithm.rawValue).pem", in: fixture.directory)
            let verified = try run("openssl", ["verify", "-x509_strict", "-purpose", "any", "-CAfile", caPath, holderPath])
            #expect(verified.status == 0 && verified.output.contains("\(holderPath): OK"), "openssl verify: \(verified.output)")

            let text = try run("openssl", ["x509", "-in", holderPath, "-noout", "-text", "-nameopt", "RFC2253"]).output
            #expect(text.contains("Subject: CN=Mario Rossi,serialNumber=TINIT-RSSMRA80A01H501U,SN=Rossi,GN=Mario,C=IT"), "\(text)")
            #expect(text.contains("Issuer: CN=Sigillo Test CA,O=Sigillo Test,C=IT"), "\(text)")
            #expect(text.contains("X509v3 Key Usage: critical\n                Non Repudiation\n"), "\(text)")
            #expect(text.contains("URI:https://sign.example.it/crl/ca.crl"), "\(text)")
            #expect(text.contains("OCSP - URI:https://sign.example.it/ocsp"), "\(text)")
            #expect(text.contains("CA Issuers - URI:https://sign.example.it/ca.cer"), "\(text)")
            #expect(text.contains("email:mario.rossi@example.it"), "\(text)")
            #expect(text.contains("CA:FALSE"), "\(text)")
            #expect(text.contains("X509v3 Subject Key Identifier"), "\(text)")
            #expect(text.contains("X509v3 Authority Key Identifier"), "\(text)")
            #expect(text.contains("Serial Number:"), "\(text)")

            // Exactly three calendar years, to the second.
            let start = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            let end = calendar.date(byAdding: .year, value: 3, to: start)!
            #expect(holderCert.notValidBefore == start && holderCert.notValidAfter == end)
            #expect(text.contains("Not Before: \(opensslDate(start))"), "\(text)")
            #expect(text.contains("Not After : \(opensslDate(end))"), "\(text)")

            // openssl agrees on the serial.
            let serial = try run("openssl", ["x509", "-in", holderPath, "-noout", "-serial"]).output
            #expect(serial.trimmingCharacters(in: .whitespacesAndNewlines) == "serial=" + CertificateAuthority.serialHex(holderCert.serialNumber))
        }
        #expect(serials.count == 2 && serials[0] != serials[1])
    }

    @Test("a certificate from another CA is rejected")
    func otherCARejected() async throws {
        let fixture = try TestToken()
        let token = fixture.token
        let ca = try await CertificateAuthority.create(token: token, name: testCAName, now: Date())
        // Same name, different key: only the signature tells them apart.
        let rogue = try await CertificateAuthority.create(token: token, keyID: "rogue-ca", name: testCAName, now: Date())
        let spki = try await token.generateKeyPair(id: "holder", algorithm: .ecP256)
        let good = try await ca.issueHolderCertificate(publicKeySPKI: spki, holder: mario, notBefore: Date(), pkiBaseURL: "https://sign.example.it")
        let bad = try await rogue.issueHolderCertificate(publicKeySPKI: spki, holder: mario, notBefore: Date(), pkiBaseURL: "https://sign.example.it")
        let caPath = try write(ca.certificatePEM, "ca.pem", in: fixture.directory)
        let goodPath = try write(try CertificateAuthority.pem(of: good), "good.pem", in: fixture.directory)
        let badPath = try write(try CertificateAuthority.pem(of: bad), "bad.pem", in: fixture.directory)
        let accepted = try run("openssl", ["verify", "-CAfile", caPath, goodPath])
        #expect(accepted.status == 0, "\(accepted.output)")
        let rejected = try run("openssl", ["verify", "-CAfile", caPath, badPath])
        #expect(rejected.status != 0, "openssl accepted a certificate of another CA: \(rejected.output)")
        #expect(!ca.certificate.publicKey.isValidSignature(bad.signature, for: bad))
    }

    @Test("an existing CA loads from PEM and DER and keeps issuing")
    func loadExisting() async throws {
        let fixture = try TestToken()
        let created = try await CertificateAuthority.create(token: fixture.token, algorithm: .ecP384, name: testCAName, now: Date())
        let fromPEM = try CertificateAuthority(token: fixture.token, keyID: "sigillo-ca", certificatePEM: created.certificatePEM)
        let fromDER = try CertificateAuthority(token: fixture.token, keyID: "sigillo-ca", certificateDER: created.certificateDER)
        #expect(fromPEM.certificate == created.certificate && fromDER.certificate == created.certificate)
        #expect(fromPEM.keyIdentifier == created.keyIdentifier)
        try await fromPEM.checkKeyInToken()
        let spki = try await fixture.token.generateKeyPair(id: "holder", algorithm: .ecP384)
        let issued = try await fromPEM.issueHolderCertificate(publicKeySPKI: spki, holder: mario, notBefore: Date(), validityYears: 1, pkiBaseURL: "https://sign.example.it")
        #expect(created.certificate.publicKey.isValidSignature(issued.signature, for: issued))

        // A certificate whose key is not the token's key of that id is caught.
        let other = try await CertificateAuthority.create(token: fixture.token, keyID: "other-ca", name: testCAName, now: Date())
        let mismatched = try CertificateAuthority(token: fixture.token, keyID: "sigillo-ca", certificate: other.certificate)
        await #expect(throws: SigilloError.self) { try await mismatched.checkKeyInToken() }
        // A leaf is not a CA.
        #expect(throws: SigilloError.self) { try CertificateAuthority(token: fixture.token, keyID: "holder", certificate: issued) }
        // The same key id cannot be created twice.
        await #expect(throws: PKCS11Error.self) { try await CertificateAuthority.create(token: fixture.token, name: testCAName, now: Date()) }
    }

    @Test("the token key signs asynchronously only and never exports")
    func tokenKeyAPI() async throws {
        let fixture = try TestToken()
        _ = try await fixture.token.generateKeyPair(id: "k", algorithm: .ecP256)
        let key = try await TokenPrivateKey.load(token: fixture.token, keyID: "k")
        #expect(key.defaultSignatureAlgorithm == .ecdsaWithSHA256)
        let privateKey = Certificate.PrivateKey(key)
        #expect(privateKey.publicKey == key.publicKey)
        let message = Array("to be signed".utf8)
        let selfSigned = try await Certificate(
            version: .v3, serialNumber: .init(), publicKey: key.publicKey, notValidBefore: Date(), notValidAfter: Date() + 86400,
            issuer: testCAName, subject: testCAName, signatureAlgorithm: .ecdsaWithSHA384, extensions: Certificate.Extensions(),
            issuerAsyncPrivateKey: privateKey)
        #expect(selfSigned.signatureAlgorithm == .ecdsaWithSHA384)
        #expect(key.publicKey.isValidSignature(selfSigned.signature, for: selfSigned))
        #expect(throws: (any Error).self) { try privateKey.sign(bytes: message, signatureAlgorithm: .ecdsaWithSHA256) }
        await #expect(throws: (any Error).self) { try await privateKey.signAsynchronously(bytes: message, signatureAlgorithm: .sha256WithRSAEncryption) }
        #expect(throws: (any Error).self) { try privateKey.serializeAsPEM() }
        #expect(throws: (any Error).self) {
            try Certificate(
                version: .v3, serialNumber: .init(), publicKey: key.publicKey, notValidBefore: Date(), notValidAfter: Date() + 86400,
                issuer: testCAName, subject: testCAName, extensions: Certificate.Extensions(), issuerPrivateKey: privateKey)
        }
    }

    @Test("bad holder input is refused before signing")
    func invalidInput() async throws {
        let fixture = try TestToken()
        let ca = try await CertificateAuthority.create(token: fixture.token, name: testCAName, now: Date())
        let spki = try await fixture.token.generateKeyPair(id: "holder", algorithm: .ecP256)
        let base = "https://sign.example.it"
        let cases: [(spki: [UInt8], holder: HolderIdentity, years: Int, url: String)] = [
            (spki, HolderIdentity(givenName: "Mario", surname: "Rossi", fiscalCode: "RSSMRA80A01H501X"), 3, base),
            (spki, HolderIdentity(givenName: "Mario", surname: "Rossi", fiscalCode: "RSSMRA80A01H501"), 3, base),
            (spki, HolderIdentity(givenName: " ", surname: "Rossi", fiscalCode: "RSSMRA80A01H501U"), 3, base),
            (spki, HolderIdentity(givenName: "Mario", surname: "Rossi", fiscalCode: "RSSMRA80A01H501U", email: "not-an-email"), 3, base),
            (Array(P521.Signing.PrivateKey().publicKey.derRepresentation), mario, 3, base),
            ([0x30, 0x03, 0x02, 0x01, 0x01], mario, 3, base),
            (spki, mario, 0, base),
            (spki, mario, 3, "sign.example.it"),
        ]
        for (index, bad) in cases.enumerated() {
            do {
                _ = try await ca.issueHolderCertificate(publicKeySPKI: bad.spki, holder: bad.holder, notBefore: Date(), validityYears: bad.years, pkiBaseURL: bad.url)
                Issue.record("case \(index) was accepted")
            } catch let error as SigilloError {
                #expect(error.code == .invalidRequest, "case \(index): \(error)")
            }
        }
    }

    @Test("codice fiscale check character")
    func fiscalCodes() throws {
        for valid in ["RSSMRA80A01H501U", "RSSMRA85T10A562S", "MRTMTT25D09F205Z"] {
            #expect(HolderIdentity.isValidFiscalCode(valid), "\(valid)")
        }
        for invalid in ["RSSMRA80A01H501A", "RSSMRA80A01H50", "RSSMRA80Z01H501U", "1SSMRA80A01H501U", "rssmra80a01h501u"] {
            #expect(!HolderIdentity.isValidFiscalCode(invalid), "\(invalid)")
        }
        #expect(try mario.validated().fiscalCode == "RSSMRA80A01H501U")
        #expect(mario.subjectSerialNumber == "TINIT-RSSMRA80A01H501U")
    }

    @Test("serial numbers: 16 bytes, positive, distinct; hex as openssl prints it")
    func serials() {
        let serials = (0..<1000).map { _ in CertificateAuthority.randomSerialNumber() }
        #expect(Set(serials).count == serials.count)
        #expect(serials.allSatisfy { $0.bytes.count == 16 && $0.bytes.first! & 0xC0 == 0x40 })
        #expect(CertificateAuthority.serialHex(Certificate.SerialNumber(bytes: [0x40, 0x0A, 0xFF])) == "400AFF")
    }

    /// The private key `keyID` is sensitive and never extractable, by our session and by pkcs11-tool.
    static func expectNotExtractable(_ fixture: TestToken, keyID: String, isRSA: Bool) async throws {
        let handle = try await fixture.token.keyEntry(id: keyID).handle
        // CKA_VALUE (EC) or CKA_PRIVATE_EXPONENT (RSA); CKA_SENSITIVE; CKA_EXTRACTABLE; CKR_ATTRIBUTE_SENSITIVE.
        let secret: AttributeType = isRSA ? .privateExponent : .value
        let outcome: (rv: ReturnValue?, sensitive: [UInt8], extractable: [UInt8]) = try await fixture.token.withSession { session throws(PKCS11Error) in
            var rv: ReturnValue?
            do throws(PKCS11Error) { _ = try session.attribute(secret, of: handle) } catch { rv = error.rv }
            return (rv, try session.attribute(.sensitive, of: handle), try session.attribute(.extractable, of: handle))
        }
        #expect(outcome.rv?.rawValue == 0x11, "reading the CA private key must fail with CKR_ATTRIBUTE_SENSITIVE")
        #expect(outcome.sensitive == [1] && outcome.extractable == [0])
        let hexID = Array(keyID.utf8).map { String(format: "%02x", $0) }.joined()
        let listed = try run("pkcs11-tool", ["--module", TestHSM.modulePath, "--token-label", fixture.label, "--login", "--pin", fixture.userPIN, "--list-objects", "--type", "privkey", "--id", hexID], environment: try fixture.isolatedEnvironment())
        #expect(listed.status == 0, "\(listed.output)")
        #expect(listed.output.contains("ID:         \(hexID)"), "\(listed.output)")
        #expect(listed.output.contains("Access:     sensitive, always sensitive, never extractable"), "\(listed.output)")
    }
}
