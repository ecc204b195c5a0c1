import Crypto
import Foundation
import PKCS11
import SwiftASN1

/// An RFC 3161 time-stamp request (`application/timestamp-query`), as a client sends it.
///
/// ```
/// TimeStampReq ::= SEQUENCE { version INTEGER { v1(1) }, messageImprint MessageImprint,
///     reqPolicy TSAPolicyId OPTIONAL, nonce INTEGER OPTIONAL, certReq BOOLEAN DEFAULT FALSE,
///     extensions [0] IMPLICIT Extensions OPTIONAL }
/// MessageImprint ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING }
/// ```
///
/// ```swift
/// let query = try TimeStampQuery(digest: Array(SHA256.hash(data: value)), hashAlgorithm: .sha256)
/// let token = try TimeStampReply(der: try await post(try query.derEncoded())).grantedToken()  // or the TSA's reason
/// let info = try query.check(token: token)                                      // imprint and nonce as asked
/// ```
public struct TimeStampQuery: Hashable, Sendable {
    /// The digest to be time-stamped.
    public let digest: [UInt8]
    /// Its algorithm.
    public let hashAlgorithm: HashAlgorithm
    /// The nonce's big-endian magnitude (no leading zero byte), or nil for a request without a nonce.
    public let nonce: [UInt8]?
    /// Whether the TSA is asked to put its certificate in the token (`certReq`).
    public let certificateRequested: Bool

    /// A request for `digest`.
    ///
    /// - Parameters:
    ///   - nonce: the nonce's bytes, big-endian; a fresh random 8-byte nonce when not given. Pass `[]` for none.
    ///   - certificateRequested: `certReq`; true so that the token carries the TSA certificate a validator needs.
    /// - Throws: `CMSError` when the digest length does not match the algorithm.
    public init(digest: [UInt8], hashAlgorithm: HashAlgorithm = .sha256, nonce: [UInt8]? = nil, certificateRequested: Bool = true) throws {
        guard digest.count == hashAlgorithm.digestLength else {
            throw CMSError("a \(hashAlgorithm.rawValue) digest is \(hashAlgorithm.digestLength) bytes, not \(digest.count)")
        }
        self.digest = digest
        self.hashAlgorithm = hashAlgorithm
        let bytes = nonce ?? Self.randomNonce()
        let magnitude = DERReading.magnitude(bytes)
        self.nonce = magnitude.isEmpty ? nil : magnitude
        self.certificateRequested = certificateRequested
    }

    /// Eight random bytes whose first is in 0x01…0x7F: a positive INTEGER of exactly eight content bytes, so its hex
    /// (as CSC `signatures/timestamp` sends it) and its DER agree without any sign padding.
    public static func randomNonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return [UInt8.random(in: 1...0x7F, using: &generator)] + (0..<7).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// The nonce in lowercase hex (CSC `signatures/timestamp`'s `nonce`), or nil.
    public var nonceHex: String? {
        self.nonce.map { $0.map { String(format: "%02x", $0) }.joined() }
    }

    /// The DER `TimeStampReq`.
    public func derEncoded() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { serializer in
            try serializer.serialize(1)
            try Self.serializeImprint(self.hashAlgorithm, self.digest, into: &serializer)
            if let nonce = self.nonce {
                serializer.appendPrimitiveNode(identifier: .integer) { bytes in
                    if nonce.first! & 0x80 != 0 { bytes.append(0) }
                    bytes.append(contentsOf: nonce)
                }
            }
            if self.certificateRequested { try serializer.serialize(true) }
        }
        return serializer.serializedBytes
    }

    /// `MessageImprint` with the digest algorithm's parameters absent (RFC 5754).
    static func serializeImprint(_ algorithm: HashAlgorithm, _ digest: [UInt8], into serializer: inout DER.Serializer) throws {
        try serializer.appendConstructedNode(identifier: .sequence) { serializer in
            try serializer.appendConstructedNode(identifier: .sequence) { serializer in
                try serializer.serialize(CMSOID.digest(algorithm))
            }
            try serializer.serialize(ASN1OctetString(contentBytes: digest[...]))
        }
    }

    /// Checks that `token` answers this request: a `SignedData` over a `TSTInfo` whose message imprint is this digest
    /// with this algorithm, whose nonce is this nonce (when one was sent), and which carries the TSA's certificate
    /// (when it was requested).
    ///
    /// - Returns: what the token says.
    /// - Throws: `CMSError` saying what does not match.
    @discardableResult
    public func check(token: [UInt8]) throws -> TimeStampTokenInfo {
        let info = try TimeStampTokenInfo(token: token)
        guard info.hashAlgorithm == self.hashAlgorithm, info.hashedMessage == self.digest else {
            throw CMSError("the time-stamp token is over another digest than the one asked for (message imprint mismatch)")
        }
        if let nonce = self.nonce {
            guard let echoed = info.nonce else { throw CMSError("the time-stamp token has no nonce: the TSA did not echo the one sent") }
            guard echoed == nonce else { throw CMSError("the time-stamp token's nonce is not the one sent (a replayed or mixed-up answer)") }
        }
        if self.certificateRequested, info.certificateCount == 0 {
            throw CMSError("the time-stamp token carries no certificate although certReq was set")
        }
        return info
    }
}

/// An RFC 3161 time-stamp response (`application/timestamp-reply`): `TimeStampResp ::= SEQUENCE { status
/// PKIStatusInfo, timeStampToken TimeStampToken OPTIONAL }`, with `PKIStatusInfo ::= SEQUENCE { status PKIStatus,
/// statusString PKIFreeText OPTIONAL, failInfo PKIFailureInfo OPTIONAL }`.
public struct TimeStampReply: Hashable, Sendable {
    /// `PKIStatus`: 0 granted, 1 grantedWithMods, 2 rejection, 3 waiting, 4 revocationWarning, 5 revocationNotification.
    public let status: Int
    /// `statusString`, its texts joined.
    public let statusText: String?
    /// The names of the `failInfo` bits set (`badAlg`, `badRequest`, `badDataFormat`, …).
    public let failures: [String]
    /// The DER `TimeStampToken` (a `ContentInfo`), exactly as received; present when granted.
    public let token: [UInt8]?

    /// Parses a reply, granted or not.
    ///
    /// - Throws: `CMSError` when it is not a `TimeStampResp`.
    public init(der: [UInt8]) throws {
        let root = try DERReading.parse(der, what: "time-stamp reply")
        let fields = try DERReading.children(root, what: "TimeStampResp")
        guard let statusInfo = fields.first else { throw CMSError("TimeStampResp: no status") }
        let statusFields = try DERReading.children(statusInfo, what: "PKIStatusInfo")
        guard let statusNode = statusFields.first else { throw CMSError("PKIStatusInfo: no status") }
        let status: Int
        do { status = try Int(derEncoded: statusNode) } catch { throw CMSError("PKIStatusInfo: malformed status") }
        var texts: [String] = []
        var failures: [String] = []
        for field in statusFields.dropFirst() {
            if field.identifier == .sequence {
                for text in try DERReading.children(field, what: "PKIFreeText") {
                    if let utf8 = try? ASN1UTF8String(derEncoded: text) { texts.append(String(utf8)) }
                }
            } else if field.identifier == .bitString, let bits = try? ASN1BitString(derEncoded: field) {
                failures = Self.failureNames(bits)
            }
        }
        self.status = status
        self.statusText = texts.isEmpty ? nil : texts.joined(separator: "; ")
        self.failures = failures
        self.token = fields.count >= 2 ? Array(fields[1].encodedBytes) : nil
    }

    /// Whether the TSA granted the request (`granted` or `grantedWithMods`).
    public var isGranted: Bool { self.status == 0 || self.status == 1 }

    /// The token of a granted reply.
    ///
    /// - Throws: `CMSError` with the TSA's status, text and failure bits when it is not granted or has no token.
    public func grantedToken() throws -> [UInt8] {
        guard self.isGranted else {
            var reason = "the TSA refused the time-stamp request (PKIStatus \(Self.statusName(self.status)))"
            if let text = self.statusText { reason += ": \(text)" }
            if !self.failures.isEmpty { reason += " [failInfo: \(self.failures.joined(separator: ", "))]" }
            throw CMSError(reason)
        }
        guard let token = self.token else { throw CMSError("the TSA granted the request but sent no time-stamp token") }
        return token
    }

    static func statusName(_ status: Int) -> String {
        let names = ["granted", "grantedWithMods", "rejection", "waiting", "revocationWarning", "revocationNotification"]
        return names.indices.contains(status) ? names[status] : "\(status)"
    }

    /// `PKIFailureInfo` bit names (RFC 3161 §2.4.2).
    static func failureNames(_ bits: ASN1BitString) -> [String] {
        let names: [Int: String] = [
            0: "badAlg", 2: "badRequest", 5: "badDataFormat", 14: "timeNotAvailable", 15: "unacceptedPolicy",
            16: "unacceptedExtension", 17: "addInfoNotAvailable", 25: "systemFailure",
        ]
        var set: [String] = []
        for (index, byte) in bits.bytes.enumerated() {
            for bit in 0..<8 where byte & (0x80 >> bit) != 0 {
                let number = index * 8 + bit
                set.append(names[number] ?? "bit \(number)")
            }
        }
        return set
    }
}

/// What an RFC 3161 `TimeStampToken` states, read from its `TSTInfo`; the token's signature is not checked here
/// (a relying party checks it against the TSA certificate: `openssl ts -verify`).
///
/// ```
/// TSTInfo ::= SEQUENCE { version INTEGER { v1(1) }, policy TSAPolicyId, messageImprint MessageImprint,
///     serialNumber INTEGER, genTime GeneralizedTime, accuracy Accuracy OPTIONAL, ordering BOOLEAN DEFAULT FALSE,
///     nonce INTEGER OPTIONAL, tsa [0] GeneralName OPTIONAL, extensions [1] IMPLICIT Extensions OPTIONAL }
/// ```
public struct TimeStampTokenInfo: Hashable, Sendable {
    /// The TSA's policy, dotted.
    public let policyOID: String
    /// The message imprint's algorithm.
    public let hashAlgorithm: HashAlgorithm
    /// The message imprint's digest.
    public let hashedMessage: [UInt8]
    /// The serial number's magnitude.
    public let serialNumber: [UInt8]
    /// When the TSA stamped it.
    public let genTime: Date
    /// The nonce's magnitude, when present.
    public let nonce: [UInt8]?
    /// How many certificates the token's `SignedData` carries.
    public let certificateCount: Int

    /// Parses a DER `TimeStampToken`.
    ///
    /// - Throws: `CMSError` when it is not a `SignedData` over a `TSTInfo`.
    public init(token: [UInt8]) throws {
        let contentInfo = try DERReading.children(DERReading.parse(token, what: "time-stamp token"), what: "TimeStampToken")
        guard contentInfo.count == 2, (try? ASN1ObjectIdentifier(derEncoded: contentInfo[0])) == CMSOID.signedData else {
            throw CMSError("the time-stamp token is not a CMS SignedData")
        }
        let wrapped = try DERReading.children(contentInfo[1], DERReading.context(0), what: "TimeStampToken content")
        guard let signedDataNode = wrapped.first else { throw CMSError("the time-stamp token is empty") }
        let signedData = try DERReading.children(signedDataNode, what: "SignedData")
        guard signedData.count >= 4 else { throw CMSError("SignedData: too few fields") }
        let encapsulated = try DERReading.children(signedData[2], what: "EncapsulatedContentInfo")
        guard encapsulated.count == 2, (try? ASN1ObjectIdentifier(derEncoded: encapsulated[0])) == CMSOID.tstInfo else {
            throw CMSError("the time-stamp token does not hold a TSTInfo")
        }
        let explicit = try DERReading.children(encapsulated[1], DERReading.context(0), what: "eContent")
        guard let octets = explicit.first else { throw CMSError("the time-stamp token has no TSTInfo") }
        let tstInfoBytes = try DERReading.primitive(octets, .octetString, what: "eContent")
        let fields = try DERReading.children(DERReading.parse(Array(tstInfoBytes), what: "TSTInfo"), what: "TSTInfo")
        guard fields.count >= 5 else { throw CMSError("TSTInfo: too few fields") }
        do {
            guard try Int(derEncoded: fields[0]) == 1 else { throw CMSError("TSTInfo: version is not 1") }
            self.policyOID = try ASN1ObjectIdentifier(derEncoded: fields[1]).description
            let imprint = try DERReading.children(fields[2], what: "MessageImprint")
            guard imprint.count == 2, let algorithm = try DERReading.children(imprint[0], what: "AlgorithmIdentifier").first else {
                throw CMSError("TSTInfo: malformed message imprint")
            }
            let oid = try ASN1ObjectIdentifier(derEncoded: algorithm)
            guard let hash = HashAlgorithm.allCases.first(where: { CMSOID.digest($0) == oid }) else {
                throw CMSError("TSTInfo: unsupported message imprint algorithm \(oid)")
            }
            self.hashAlgorithm = hash
            self.hashedMessage = Array(try DERReading.primitive(imprint[1], .octetString, what: "hashedMessage"))
            self.serialNumber = DERReading.magnitude(try DERReading.primitive(fields[3], .integer, what: "serialNumber"))
            self.genTime = try DERReading.date(fields[4], what: "genTime")
            self.nonce = try fields.dropFirst(5).first { $0.identifier == .integer }.map {
                DERReading.magnitude(try DERReading.primitive($0, .integer, what: "nonce"))
            }
        } catch let error as CMSError {
            throw error
        } catch {
            throw CMSError("TSTInfo: \(error)")
        }
        // certificates [0] IMPLICIT CertificateSet OPTIONAL, after encapContentInfo.
        if let certificates = signedData.dropFirst(3).first(where: { $0.identifier == DERReading.context(0) }),
            case .constructed(let nodes) = certificates.content
        {
            self.certificateCount = Array(nodes).count
        } else {
            self.certificateCount = 0
        }
    }
}
