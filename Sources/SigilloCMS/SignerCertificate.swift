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
