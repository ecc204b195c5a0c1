import Crypto
import PKCS11
import SwiftASN1

/// A time-stamp request (RFC 3161 §2.4.1), parsed strictly:
/// ```
/// TimeStampReq ::= SEQUENCE {
///     version         INTEGER { v1(1) },
///     messageImprint  MessageImprint,
///     reqPolicy       TSAPolicyId OPTIONAL,
///     nonce           INTEGER OPTIONAL,
///     certReq         BOOLEAN DEFAULT FALSE,
///     extensions      [0] IMPLICIT Extensions OPTIONAL }
/// MessageImprint ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING }
/// ```
/// `init(derEncoded:)` throws a `Rejection` with the `PKIFailureInfo` to answer: `badDataFormat` for anything that is
/// not one DER `TimeStampReq` (trailing bytes, fields out of order or twice, a hash of the wrong length), `badRequest`
/// for a version other than 1, `badAlg` for a hash other than SHA-256/384/512 (SHA-1 included) or with parameters
/// other than absent or NULL, `unacceptedExtension` for any extension. The policy is checked by the authority.
struct TimeStampRequest: Hashable, Sendable {
    /// Why a request is refused: the failure bit and the `statusString` to send.
    struct Rejection: Error, Hashable, Sendable {
        var failureInfo: PKIFailureInfo
        var reason: String
    }

    /// Longest request accepted, in octets: a request without extensions is about 100.
    static let maxLength = 8_192
    /// Longest nonce accepted, in content octets of the INTEGER (openssl sends 8, others 16 or 32).
    static let maxNonceLength = 64

    /// The `MessageImprint` as received, echoed verbatim in the `TSTInfo`.
    var messageImprintDER: [UInt8]
    var hashAlgorithm: HashAlgorithm
    var hashedMessage: [UInt8]
    var policy: ASN1ObjectIdentifier?
    /// The nonce `INTEGER` as received (tag, length, value), echoed verbatim.
    var nonceDER: [UInt8]?
    var certReq: Bool

    /// A request made here (CSC `signatures/timestamp`): the imprint written with absent parameters (RFC 5754).
    init(hashAlgorithm: HashAlgorithm, hashedMessage: [UInt8], nonceDER: [UInt8]?, certReq: Bool) throws {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.serialize(TimeStampOID.digest(hashAlgorithm))
            }
            try coder.serialize(ASN1OctetString(contentBytes: hashedMessage[...]))
        }
        self.messageImprintDER = serializer.serializedBytes
        self.hashAlgorithm = hashAlgorithm
        self.hashedMessage = hashedMessage
        self.policy = nil
        self.nonceDER = nonceDER
        self.certReq = certReq
    }

    /// Parses a DER `TimeStampReq`.
    ///
    /// - Throws: `Rejection`, never another error.
    init(derEncoded bytes: [UInt8]) throws(Rejection) {
        guard bytes.count <= Self.maxLength else {
            throw Rejection(failureInfo: .badDataFormat, reason: "the request is longer than \(Self.maxLength) octets")
        }
        let fields: Fields
        do {
            fields = try Self.parseFields(bytes)
        } catch let rejection as Rejection {
            throw rejection
        } catch {
            throw Rejection(failureInfo: .badDataFormat, reason: "not a DER TimeStampReq")
        }
        guard fields.version == 1 else {
            throw Rejection(failureInfo: .badRequest, reason: "unsupported request version (only v1)")
        }
        guard let hashAlgorithm = TimeStampOID.hashAlgorithm(fields.hashAlgorithm), fields.parametersAbsentOrNull else {
            throw Rejection(failureInfo: .badAlg, reason: "unsupported hash algorithm (SHA-256, SHA-384 or SHA-512)")
        }
        guard fields.hashedMessage.count == hashAlgorithm.digestLength else {
            throw Rejection(failureInfo: .badDataFormat, reason: "a \(hashAlgorithm) hash is \(hashAlgorithm.digestLength) octets, not \(fields.hashedMessage.count)")
        }
        guard fields.extensionCount == 0 else {
            throw Rejection(failureInfo: .unacceptedExtension, reason: "no request extension is supported")
        }
        self.messageImprintDER = fields.messageImprintDER
        self.hashAlgorithm = hashAlgorithm
        self.hashedMessage = fields.hashedMessage
        self.policy = fields.policy
        self.nonceDER = fields.nonceDER
        self.certReq = fields.certReq
    }

    /// The request's fields, before their values are judged.
    private struct Fields {
        var version: Int
        var messageImprintDER: [UInt8]
        var hashAlgorithm: ASN1ObjectIdentifier
        var parametersAbsentOrNull: Bool
        var hashedMessage: [UInt8]
        var policy: ASN1ObjectIdentifier?
        var nonceDER: [UInt8]?
        var certReq: Bool
        var extensionCount: Int
    }

    private static let tag0 = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)

    /// The structure: any DER or ASN.1 error here is `badDataFormat`.
    private static func parseFields(_ bytes: [UInt8]) throws -> Fields {
        // DER.parse refuses trailing bytes and non-minimal lengths.
        let root = try DER.parse(bytes)
        return try DER.sequence(root, identifier: .sequence) { nodes in
            guard let versionNode = nodes.next(), let imprintNode = nodes.next() else {
                throw ASN1Error.invalidASN1Object(reason: "TimeStampReq without version or messageImprint")
            }
            let version = try Int(derEncoded: versionNode)
            let (algorithm, parametersOK, hashed) = try DER.sequence(imprintNode, identifier: .sequence) { parts in
                guard let algorithmNode = parts.next(), let hashNode = parts.next() else {
                    throw ASN1Error.invalidASN1Object(reason: "incomplete MessageImprint")
                }
                let (oid, parametersOK) = try DER.sequence(algorithmNode, identifier: .sequence) { items -> (ASN1ObjectIdentifier, Bool) in
                    guard let oidNode = items.next() else { throw ASN1Error.invalidASN1Object(reason: "empty AlgorithmIdentifier") }
                    let oid = try ASN1ObjectIdentifier(derEncoded: oidNode)
                    let parameters = items.next()
                    guard items.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "unexpected field in AlgorithmIdentifier") }
                    let parametersOK = parameters.map { (try? ASN1Null(derEncoded: $0)) != nil } ?? true
                    return (oid, parametersOK)
                }
                let hashed = Array(try ASN1OctetString(derEncoded: hashNode).bytes)
                guard parts.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "unexpected field in MessageImprint") }
                return (oid, parametersOK, hashed)
            }
            var fields = Fields(
                version: version, messageImprintDER: Array(imprintNode.encodedBytes), hashAlgorithm: algorithm,
                parametersAbsentOrNull: parametersOK, hashedMessage: hashed, policy: nil, nonceDER: nil, certReq: false,
                extensionCount: 0)
            var node = nodes.next()
            if let policyNode = node, policyNode.identifier == .objectIdentifier {
                fields.policy = try ASN1ObjectIdentifier(derEncoded: policyNode)
                node = nodes.next()
            }
            if let nonceNode = node, nonceNode.identifier == .integer {
                // Checks a minimal INTEGER encoding; the nonce is echoed as received.
                let content = try ArraySlice<UInt8>(derEncoded: nonceNode)
                guard content.count <= Self.maxNonceLength else {
                    throw Rejection(failureInfo: .badDataFormat, reason: "a nonce longer than \(Self.maxNonceLength) octets")
                }
                fields.nonceDER = Array(nonceNode.encodedBytes)
                node = nodes.next()
            }
            if let certReqNode = node, certReqNode.identifier == .boolean {
                // DER omits the DEFAULT FALSE; an explicit FALSE from a BER encoder is accepted all the same.
                fields.certReq = try Bool(derEncoded: certReqNode)
                node = nodes.next()
            }
            if let extensionsNode = node, extensionsNode.identifier == Self.tag0 {
                fields.extensionCount = try DER.sequence(extensionsNode, identifier: Self.tag0) { extensions in
                    var count = 0
                    while let item = extensions.next() {
                        // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
                        try DER.sequence(item, identifier: .sequence) { parts in
                            guard let oid = parts.next() else { throw ASN1Error.invalidASN1Object(reason: "empty Extension") }
                            _ = try ASN1ObjectIdentifier(derEncoded: oid)
                            var value = parts.next()
                            if let critical = value, critical.identifier == .boolean {
                                _ = try Bool(derEncoded: critical)
                                value = parts.next()
                            }
                            guard let value else { throw ASN1Error.invalidASN1Object(reason: "Extension without extnValue") }
                            _ = try ASN1OctetString(derEncoded: value)
                            guard parts.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "unexpected field in Extension") }
                        }
                        count += 1
                    }
                    guard count > 0 else { throw ASN1Error.invalidASN1Object(reason: "empty Extensions") }
                    return count
                }
                node = nodes.next()
            }
            guard node == nil else { throw ASN1Error.invalidASN1Object(reason: "unexpected field in TimeStampReq") }
            return fields
        }
    }
}

/// Object identifiers of time-stamping (RFC 3161, RFC 5816) and CMS (RFC 5652).
enum TimeStampOID {
    static let signedData: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 7, 2]
    /// `id-ct-TSTInfo`.
    static let tstInfo: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 16, 1, 4]
    static let contentType: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 3]
    static let messageDigest: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 4]
    static let signingTime: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 5]
    /// `id-aa-signingCertificateV2` (RFC 5035).
    static let signingCertificateV2: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 9, 16, 2, 47]
    static let sha1: ASN1ObjectIdentifier = [1, 3, 14, 3, 2, 26]
    static let sha256: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 1]
    static let sha384: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 2]
    static let sha512: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 3]

    static func digest(_ hash: HashAlgorithm) -> ASN1ObjectIdentifier {
        switch hash {
        case .sha256: return Self.sha256
        case .sha384: return Self.sha384
        case .sha512: return Self.sha512
        }
    }

    /// The SHA-2 hash with `oid`; nil for any other (SHA-1 included: RFC 5816 moved time-stamping off it).
    static func hashAlgorithm(_ oid: ASN1ObjectIdentifier) -> HashAlgorithm? {
        switch oid {
        case Self.sha256: return .sha256
        case Self.sha384: return .sha384
        case Self.sha512: return .sha512
        default: return nil
        }
    }
}

extension HashAlgorithm {
    /// The digest of `bytes`.
    func digest(of bytes: [UInt8]) -> [UInt8] {
        switch self {
        case .sha256: return Array(SHA256.hash(data: bytes))
        case .sha384: return Array(SHA384.hash(data: bytes))
        case .sha512: return Array(SHA512.hash(data: bytes))
        }
    }
}
