import Crypto
import PKCS11
import SwiftASN1

/// The parts of an X.509 certificate a CMS signer needs, read straight from its DER.
///
/// The issuer name and serial number are kept as the certificate's own encoded bytes, so that
/// `IssuerAndSerialNumber` and ESS `IssuerSerial` match the certificate exactly, whatever its encoding choices.
public struct SignerCertificate: Hashable, Sendable {
    /// The kind of key in the certificate.
    public enum KeyType: Hashable, Sendable {
        case ec
        case rsa
    }

    /// The whole certificate, DER.
    public let der: [UInt8]
    /// The issuer `Name`, DER as found in the certificate.
    public let issuerDER: [UInt8]
    /// The serial number `INTEGER`, DER as found in the certificate (tag, length and value).
    public let serialNumberDER: [UInt8]
    /// The subject public key's algorithm.
    public let keyType: KeyType
    /// The serial number's magnitude (the INTEGER's content without sign padding).
    public let serialNumber: [UInt8]
    /// The subject `Name`, DER as found in the certificate (an OCSP `issuerNameHash` is over the issuer's subject).
    public let subjectDER: [UInt8]
    /// The bits of `subjectPublicKey` (an OCSP `issuerKeyHash` is over the issuer's).
    public let subjectPublicKeyBits: [UInt8]
    /// The `http(s)` URLs of the CRL distribution points (RFC 5280 §4.2.1.13, full names only).
    public let crlURLs: [String]
    /// The `http(s)` URLs of the OCSP responders in the authority information access extension (RFC 5280 §4.2.2.1).
    public let ocspURLs: [String]

    /// Parses a DER certificate.
    ///
    /// - Throws: `CMSError` when the bytes are not a certificate with an EC or RSA key.
    public init(der: [UInt8]) throws {
        self.der = der
        do {
            let root = try DER.parse(der)
            guard root.identifier == .sequence, case .constructed(let certificate) = root.content,
                let tbs = certificate.first(where: { _ in true }), tbs.identifier == .sequence,
                case .constructed(let tbsFields) = tbs.content
            else {
                throw CMSError("not an X.509 certificate")
            }
            var fields = Array(tbsFields)
            // Optional explicit [0] version.
            if let first = fields.first, first.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
                fields.removeFirst()
            }
            // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
            guard fields.count >= 6, fields[0].identifier == .integer, fields[2].identifier == .sequence,
                fields[5].identifier == .sequence, case .constructed(let spki) = fields[5].content,
                let algorithm = spki.first(where: { _ in true }), case .constructed(let algorithmFields) = algorithm.content,
                let oidNode = algorithmFields.first(where: { _ in true })
            else {
                throw CMSError("not an X.509 certificate")
            }
            self.serialNumberDER = Array(fields[0].encodedBytes)
            self.issuerDER = Array(fields[2].encodedBytes)
            self.serialNumber = DERReading.magnitude(try DERReading.primitive(fields[0], .integer, what: "serialNumber"))
            self.subjectDER = Array(fields[4].encodedBytes)
            let spkiFields = Array(spki)
            guard spkiFields.count == 2, let bits = try? ASN1BitString(derEncoded: spkiFields[1]) else {
                throw CMSError("not an X.509 certificate: malformed subject public key")
            }
            self.subjectPublicKeyBits = Array(bits.bytes)
            // extensions [3] EXPLICIT Extensions, after the optional unique identifiers [1] and [2].
            var extensions: [ASN1ObjectIdentifier: ArraySlice<UInt8>] = [:]
            if let wrapper = fields.dropFirst(6).first(where: { $0.identifier == DERReading.context(3) }) {
                for node in try DERReading.children(wrapper, DERReading.context(3), what: "extensions") {
                    for item in try DERReading.children(node, what: "Extensions") {
                        let parts = try DERReading.children(item, what: "Extension")
                        guard let first = parts.first, let last = parts.last, parts.count >= 2 else { continue }
                        extensions[try ASN1ObjectIdentifier(derEncoded: first)] = try DERReading.primitive(last, .octetString, what: "extnValue")
                    }
                }
            }
            // Read leniently: an extension this reader does not follow leaves no URL (and B-B signing unaffected).
            self.crlURLs = extensions[CMSOID.crlDistributionPoints].flatMap { try? Self.crlURLs(Array($0)) } ?? []
            self.ocspURLs = extensions[CMSOID.authorityInfoAccess].flatMap { try? Self.ocspURLs(Array($0)) } ?? []
            let keyOID = try ASN1ObjectIdentifier(derEncoded: oidNode)
            switch keyOID {
            case CMSOID.ecPublicKey: self.keyType = .ec
            case CMSOID.rsaEncryption: self.keyType = .rsa
            default: throw CMSError("unsupported certificate key algorithm \(keyOID)")
            }
        } catch let error as CMSError {
            throw error
        } catch {
            throw CMSError("not a DER X.509 certificate: \(error)")
        }
    }

    /// SHA-256 of the whole certificate (ESS `certHash`).
    public var sha256: [UInt8] { Array(SHA256.hash(data: self.der)) }


    /// ```
    /// CRLDistributionPoints ::= SEQUENCE OF DistributionPoint
    /// DistributionPoint ::= SEQUENCE { distributionPoint [0] DistributionPointName OPTIONAL, reasons [1] ..., cRLIssuer [2] ... }
    /// DistributionPointName ::= CHOICE { fullName [0] IMPLICIT GeneralNames, nameRelativeToCRLIssuer [1] ... }
    /// ```
    static func crlURLs(_ value: [UInt8]) throws -> [String] {
        var urls: [String] = []
        for point in try DERReading.children(DERReading.parse(value, what: "CRL distribution points"), what: "CRLDistributionPoints") {
            for field in try DERReading.children(point, what: "DistributionPoint") where field.identifier == DERReading.context(0) {
                for name in try DERReading.children(field, DERReading.context(0), what: "distributionPoint")
                where name.identifier == DERReading.context(0) {
                    urls += try Self.uris(try DERReading.children(name, DERReading.context(0), what: "fullName"))
                }
            }
        }
        return urls
    }

    /// `AuthorityInfoAccessSyntax ::= SEQUENCE OF AccessDescription { accessMethod OID, accessLocation GeneralName }`,
    /// the locations of `id-ad-ocsp`.
    static func ocspURLs(_ value: [UInt8]) throws -> [String] {
        var urls: [String] = []
        for description in try DERReading.children(DERReading.parse(value, what: "authority information access"), what: "AuthorityInfoAccess") {
            let parts = try DERReading.children(description, what: "AccessDescription")
            guard parts.count == 2, (try? ASN1ObjectIdentifier(derEncoded: parts[0])) == CMSOID.ocspAccessMethod else { continue }
            urls += try Self.uris([parts[1]])
        }
        return urls
    }

    /// The `http://` and `https://` `uniformResourceIdentifier [6] IA5String` among `names`.
    static func uris(_ names: [ASN1Node]) throws -> [String] {
        try names.compactMap { name -> String? in
            guard name.identifier == DERReading.context(6) else { return nil }
            let text = String(decoding: try DERReading.primitive(name, DERReading.context(6), what: "URI"), as: UTF8.self)
            let lower = text.lowercased()
            return lower.hasPrefix("http://") || lower.hasPrefix("https://") ? text : nil
        }
    }
}

/// Object identifiers used in CMS and CAdES.
enum CMSOID {
    static let data: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 7, 1]
    static let signedData: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 7, 2]
    static let contentType: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 3]
    static let messageDigest: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 4]
    static let signingTime: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 5]
    static let signingCertificateV2: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 16, 2, 47]
    static let ecPublicKey: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]
    static let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 1]
    /// `id-aa-signatureTimeStampToken` (RFC 3161 appendix A, ETSI EN 319 122-1 §5.3).
    static let signatureTimeStampToken: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 16, 2, 14]
    /// `id-ct-TSTInfo`.
    static let tstInfo: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 16, 1, 4]
    /// `id-ri-ocsp-response` (RFC 5940).
    static let ocspResponseRevocationInfo: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 16, 2]
    /// `id-pkix-ocsp-basic`.
    static let ocspBasic: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1, 1]
    /// `id-ad-ocsp`.
    static let ocspAccessMethod: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1]
    static let crlDistributionPoints: ASN1ObjectIdentifier = [2, 5, 29, 31]
    static let authorityInfoAccess: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 1, 1]
    static let sha1: ASN1ObjectIdentifier = [1, 3, 14, 3, 2, 26]

    static func digest(_ hash: HashAlgorithm) -> ASN1ObjectIdentifier {
        switch hash {
        case .sha256: return [2, 16, 840, 1, 101, 3, 4, 2, 1]
        case .sha384: return [2, 16, 840, 1, 101, 3, 4, 2, 2]
        case .sha512: return [2, 16, 840, 1, 101, 3, 4, 2, 3]
        }
    }

    static func ecdsa(_ hash: HashAlgorithm) -> ASN1ObjectIdentifier {
        switch hash {
        case .sha256: return [1, 2, 840, 10045, 4, 3, 2]
        case .sha384: return [1, 2, 840, 10045, 4, 3, 3]
        case .sha512: return [1, 2, 840, 10045, 4, 3, 4]
        }
    }

    static func rsaPKCS1(_ hash: HashAlgorithm) -> ASN1ObjectIdentifier {
        switch hash {
        case .sha256: return [1, 2, 840, 113549, 1, 1, 11]
        case .sha384: return [1, 2, 840, 113549, 1, 1, 12]
        case .sha512: return [1, 2, 840, 113549, 1, 1, 13]
        }
    }
}
