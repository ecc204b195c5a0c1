import SigilloDomain
import Crypto
import Foundation
import PKCS11
import SwiftASN1
import X509
import _CryptoExtras

/// The signing service's own certificate authority: a key pair in the token and its self-signed certificate.
///
/// It issues the holders' certificates. Every signature (the CA certificate's own, the holders') is made by the
/// token through `TokenPrivateKey`; the CA private key never leaves it.
public struct CertificateAuthority: Sendable {
    /// The token holding the CA key.
    public let token: Token
    /// The CA key's `CKA_ID` in the token.
    public let keyID: String
    /// The CA certificate.
    public let certificate: Certificate
    /// The CA certificate, PEM.
    public let certificatePEM: String
    /// The CA certificate, DER (what `/ca.cer` serves).
    public let certificateDER: [UInt8]
    /// The CA key as swift-certificates sees it.
    public let privateKey: TokenPrivateKey
    /// The CA's key identifier (its SubjectKeyIdentifier), used as AuthorityKeyIdentifier in what it issues.
    public let keyIdentifier: [UInt8]
    /// The certificates above this CA, up to and including the provider's root (empty for a self-signed CA).
    public let chain: [Certificate]
    /// The whole chain, DER: this CA's certificate, then `chain`.
    public let chainDER: [[UInt8]]
    /// The whole chain as a certs-only CMS message (what `/ca.p7c` serves).
    public let chainBundle: [UInt8]
    /// The qualified certificate profile of the holder certificates this CA issues.
    public var profile: QualifiedCertificateProfile

    /// A CA whose key `keyID` is in `token` and whose certificate is `certificate`.
    ///
    /// Does not ask the token: call `checkKeyInToken()` to be sure the key is there and matches.
    ///
    /// - Throws: `SigilloError.invalidRequest` if the certificate is not a CA certificate or its key type is not
    ///   supported.
    public init(token: Token, keyID: String, certificate: Certificate, chain: [Certificate] = [], profile: QualifiedCertificateProfile = .development()) throws {
        guard let constraints = try certificate.extensions.basicConstraints, case .isCertificateAuthority = constraints else {
            throw SigilloError(.invalidRequest, "the certificate is not a CA certificate (basicConstraints CA:TRUE missing)")
        }
        self.token = token
        self.keyID = keyID
        self.certificate = certificate
        self.chain = chain
        self.profile = profile
        self.privateKey = try TokenPrivateKey(token: token, keyID: keyID, publicKey: certificate.publicKey)
        self.certificatePEM = try certificate.serializeAsPEM().pemString
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        self.certificateDER = serializer.serializedBytes
        self.chainDER = [self.certificateDER] + (try chain.map { try Self.der(of: $0) })
        self.chainBundle = try CertificateBundle(certificates: self.chainDER).derEncoded()
        if let ski = try certificate.extensions.subjectKeyIdentifier {
            self.keyIdentifier = Array(ski.keyIdentifier)
        } else {
            self.keyIdentifier = Array(SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier)
        }
    }

    /// A CA whose certificate is `certificatePEM`.
    public init(token: Token, keyID: String, certificatePEM: String) throws {
        try self.init(token: token, keyID: keyID, certificate: try Certificate(pemEncoded: certificatePEM))
    }

    /// A CA whose certificate is `certificateDER`.
    public init(token: Token, keyID: String, certificateDER: [UInt8]) throws {
        try self.init(token: token, keyID: keyID, certificate: try Certificate(derEncoded: certificateDER))
    }

    /// Generates the CA key pair in the token and a self-signed CA certificate.
    ///
    /// The certificate has basicConstraints CA:TRUE with pathLenConstraint 0 (it issues end-entity certificates
    /// only) and keyUsage keyCertSign + cRLSign, both critical, and subject and authority key identifiers.
    /// If the certificate cannot be made, the new key pair is destroyed again.
    ///
    /// - Parameters:
    ///   - token: the token to generate the key in.
    ///   - keyID: the key's `CKA_ID`; must not exist yet.
    ///   - algorithm: the CA key algorithm.
    ///   - name: the CA's subject (and issuer) name.
    ///   - validityYears: years from `now` until the certificate expires.
    ///   - now: the start of validity (truncated to whole seconds).
    ///   - profile: the qualified profile of the holder certificates it issues.
    /// - Throws: `PKCS11Error.keyAlreadyExists` if `keyID` is taken, other `PKCS11Error`s from the token,
    ///   `SigilloError.invalidRequest` for a bad validity.
    public static func create(
        token: Token,
        keyID: String = "sigillo-ca",
        algorithm: KeyAlgorithm = .ecP384,
        name: DistinguishedName,
        validityYears: Int = 10,
        now: Date,
        profile: QualifiedCertificateProfile = .development()
    ) async throws -> CertificateAuthority {
        let notBefore = Self.wholeSeconds(now)
        let notAfter = try Self.adding(years: validityYears, to: notBefore)
        let spki = try await token.generateKeyPair(id: keyID, algorithm: algorithm, label: keyID)
        do {
            let key = try TokenPrivateKey(token: token, keyID: keyID, publicKeySPKI: spki)
            let ski = SubjectKeyIdentifier(hash: key.publicKey)
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                ski
                AuthorityKeyIdentifier(keyIdentifier: ski.keyIdentifier)
            }
            let certificate = try await Certificate(
                version: .v3,
                serialNumber: Self.randomSerialNumber(),
                publicKey: key.publicKey,
                notValidBefore: notBefore,
                notValidAfter: notAfter,
                issuer: name,
                subject: name,
                signatureAlgorithm: key.defaultSignatureAlgorithm,
                extensions: extensions,
                issuerAsyncPrivateKey: Certificate.PrivateKey(key)
            )
            return try CertificateAuthority(token: token, keyID: keyID, certificate: certificate, profile: profile)
        } catch {
            _ = try? await token.destroyKeyPair(id: keyID)
            throw error
        }
    }

    /// Checks that the CA key is in the token and that its public key is the certificate's.
    ///
    /// - Throws: `PKCS11Error.keyNotFound`, or `SigilloError.certificateInvalid` on a mismatch.
    public func checkKeyInToken() async throws {
        let spki = try await self.token.publicKey(id: self.keyID)
        guard try Certificate.PublicKey(derEncoded: spki) == self.certificate.publicKey else {
            throw SigilloError(.certificateInvalid, "the CA certificate does not match the key '\(self.keyID)' in the token")
        }
    }

    /// Issues a holder's qualified signing certificate (ETSI EN 319 412-2, natural person).
    ///
    /// Subject `C=IT, GN, SN, serialNumber=TINIT-<fiscal code>, CN=<given name> <surname>`; keyUsage
    /// nonRepudiation alone (critical); certificate policies and QC statements from `profile`; a random positive
    /// 16-byte serial number; subject and authority key identifiers; CRL distribution point
    /// `<pkiBaseURL>/crl/ca.crl`; authority information access with OCSP `<pkiBaseURL>/ocsp` and CA issuers
    /// (`caIssuersURL`); an rfc822Name subjectAltName when the holder has an e-mail address.
    ///
    /// - Parameters:
    ///   - publicKeySPKI: the holder's public key (SubjectPublicKeyInfo, DER): EC P-256/P-384 or RSA 2048–4096.
    ///   - holder: who the certificate is for; validated first.
    ///   - notBefore: start of validity (truncated to whole seconds).
    ///   - validityYears: the certificate expires this many calendar years after `notBefore`.
    ///   - pkiBaseURL: the publication listener's URL, e.g. `http://pki.example.it` (a trailing `/` is ignored).
    /// - Throws: `SigilloError.invalidRequest` for bad input; `PKCS11Error` from the token.
    public func issueHolderCertificate(
        publicKeySPKI: [UInt8],
        holder: HolderIdentity,
        notBefore: Date,
        validityYears: Int = 3,
        pkiBaseURL: String
    ) async throws -> Certificate {
        let holder = try holder.validated()
        let publicKey = try Self.holderPublicKey(publicKeySPKI)
        let start = Self.wholeSeconds(notBefore)
        let end = try Self.adding(years: validityYears, to: start)
        let baseURL = try Self.normalizedBaseURL(pkiBaseURL)

        let subject = DistinguishedName([
            RelativeDistinguishedName(try .init(type: .RDNAttributeType.countryName, printableString: "IT")),
            RelativeDistinguishedName(.init(type: Self.givenNameOID, utf8String: holder.givenName)),
            RelativeDistinguishedName(.init(type: Self.surnameOID, utf8String: holder.surname)),
            RelativeDistinguishedName(try .init(type: Self.serialNumberOID, printableString: holder.subjectSerialNumber)),
            RelativeDistinguishedName(.init(type: .RDNAttributeType.commonName, utf8String: holder.commonName)),
        ])
        let extensions = try Certificate.Extensions {
            Critical(KeyUsage(nonRepudiation: true))
            BasicConstraints.notCertificateAuthority
            self.profile.certificatePolicies
            self.profile.qcStatements
            SubjectKeyIdentifier(hash: publicKey)
            AuthorityKeyIdentifier(keyIdentifier: self.keyIdentifier[...])
            self.crlDistributionPoints(baseURL: baseURL)
            self.authorityInformationAccess(baseURL: baseURL)
            if let email = holder.email {
                SubjectAlternativeNames([.rfc822Name(email)])
            }
        }
        return try await self.sign(publicKey: publicKey, subject: subject, notBefore: start, notAfter: end, extensions: extensions)
    }

    /// A certificate for `publicKey` and `subject` this CA signs in the token, with a new random serial number.
    func sign(publicKey: Certificate.PublicKey, subject: DistinguishedName, notBefore: Date, notAfter: Date,
              extensions: Certificate.Extensions) async throws -> Certificate {
        try await Certificate(
            version: .v3,
            serialNumber: Self.randomSerialNumber(),
            publicKey: publicKey,
            notValidBefore: notBefore,
            notValidAfter: notAfter,
            issuer: self.certificate.subject,
            subject: subject,
            signatureAlgorithm: self.privateKey.defaultSignatureAlgorithm,
            extensions: extensions,
            issuerAsyncPrivateKey: Certificate.PrivateKey(self.privateKey)
        )
    }

    /// The CRL distribution point of every certificate this CA issues: `<baseURL>/crl/ca.crl`.
    func crlDistributionPoints(baseURL: String) -> CRLDistributionPoints {
        CRLDistributionPoints(urls: ["\(baseURL)/crl/ca.crl"])
    }

    /// OCSP `<baseURL>/ocsp` and the CA issuers URL (`caIssuersURL`) of every certificate this CA issues.
    func authorityInformationAccess(baseURL: String) -> AuthorityInformationAccess {
        AuthorityInformationAccess([
            .init(method: .ocspServer, location: .uniformResourceIdentifier("\(baseURL)/ocsp")),
            .init(method: .issuingCA, location: .uniformResourceIdentifier(self.caIssuersURL(baseURL: baseURL))),
        ])
    }

    // MARK: Helpers

    /// The CA issuers URL of the certificates this CA issues: `<pkiBaseURL>/ca.cer` (the CA certificate) for a
    /// self-signed CA, `<pkiBaseURL>/ca.p7c` (the whole chain up to the root, certs-only CMS) under a root.
    public func caIssuersURL(baseURL: String) -> String {
        self.chain.isEmpty ? "\(baseURL)/ca.cer" : "\(baseURL)/ca.p7c"
    }

    /// `certificate` as PEM.
    public static func pem(of certificate: Certificate) throws -> String {
        try certificate.serializeAsPEM().pemString
    }

    /// `certificate` as DER.
    public static func der(of certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    /// The serial number as upper-case hex without separators (`openssl x509 -serial` style).
    public static func serialHex(_ serialNumber: Certificate.SerialNumber) -> String {
        serialNumber.bytes.map { byte in
            let hex = String(byte, radix: 16, uppercase: true)
            return byte < 0x10 ? "0" + hex : hex
        }.joined()
    }

    /// A random positive 16-byte serial number: the top bit is cleared (positive) and the next one set, so the
    /// number is non-zero and its DER INTEGER is exactly 16 bytes with no padding.
    public static func randomSerialNumber() -> Certificate.SerialNumber {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        bytes[0] = (bytes[0] & 0x7F) | 0x40
        return Certificate.SerialNumber(bytes: bytes)
    }

    /// How far back the CRL's and OCSP answers' `thisUpdate` are dated: validators refuse revocation data issued
    /// "after" their own clock (pyHanko: "CRL is too recent"), and a relying party's clock may be a little behind.
    public static let clockSkewAllowance: TimeInterval = 60

    /// `id-at-givenName`.
    static let givenNameOID: ASN1ObjectIdentifier = [2, 5, 4, 42]
    /// `id-at-surname`.
    static let surnameOID: ASN1ObjectIdentifier = [2, 5, 4, 4]
    /// `id-at-serialNumber`.
    static let serialNumberOID: ASN1ObjectIdentifier = [2, 5, 4, 5]

    /// Parses a holder key and checks it is one we issue for.
    static func holderPublicKey(_ spki: [UInt8]) throws -> Certificate.PublicKey {
        let publicKey: Certificate.PublicKey
        do {
            publicKey = try Certificate.PublicKey(derEncoded: spki)
        } catch {
            throw SigilloError(.invalidRequest, "the public key is not a valid SubjectPublicKeyInfo")
        }
        if P256.Signing.PublicKey(publicKey) != nil || P384.Signing.PublicKey(publicKey) != nil {
            return publicKey
        }
        if let rsa = _RSA.Signing.PublicKey(publicKey), (2048...4096).contains(rsa.keySizeInBits) {
            return publicKey
        }
        throw SigilloError(.invalidRequest, "the public key must be EC P-256, EC P-384 or RSA 2048 to 4096 bits")
    }

    static func wholeSeconds(_ date: Date) -> Date {
        Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
    }

    /// `date` plus `years` calendar years, in UTC.
    static func adding(years: Int, to date: Date) throws -> Date {
        guard (1...100).contains(years) else {
            throw SigilloError(.invalidRequest, "the validity must be 1 to 100 years, got \(years)")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let end = calendar.date(byAdding: .year, value: years, to: date) else {
            throw SigilloError(.invalidRequest, "cannot add \(years) years to \(date)")
        }
        return end
    }

    /// `url` without a trailing `/`, checked to be an absolute http(s) URL.
    static func normalizedBaseURL(_ url: String) throws -> String {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), ["http", "https"].contains(scheme),
              parsed.host != nil, url.unicodeScalars.allSatisfy({ $0.isASCII })
        else {
            throw SigilloError(.invalidRequest, "the PKI base URL must be an absolute http or https URL")
        }
        return url
    }
}
