import SigilloDomain
import Crypto
import Foundation
import SwiftASN1
import X509

/// The OCSP responder (RFC 6960) for certificates issued by the CA; responses are signed by the CA key in the
/// token (the CA is its own responder, identified by key hash, and its certificate is included).
///
/// swift-certificates 1.21 keeps its OCSP types internal, so the request is parsed and the response written here
/// with SwiftASN1:
/// ```
/// OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
/// TBSRequest  ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] EXPLICIT GeneralName OPTIONAL,
///                            requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
/// Request     ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
/// CertID      ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
///                            issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber }
/// ```
/// Each CertID is matched against the CA with SHA-1, SHA-256, SHA-384 or SHA-512; a serial number the CA never issued
/// is `unknown`, a CertID of another issuer gets `unauthorized` (RFC 5019 §2.2.3; no signature). A suspended
/// certificate is `revoked` with reason certificateHold. Anything unparseable gets a `malformedRequest` response and a
/// failure of the store or the token an `internalError` response: the caller always has DER to send.
///
/// Bounded, as the lightweight profile (RFC 5019) wants for high volume:
/// - one CertID per request (RFC 5019 §2.1.1: clients MUST send one): more is `malformedRequest`, so a request
///   cannot make the responder look up and sign hundreds of statuses;
/// - a nonce of 1 to 32 octets (RFC 8954 §2.1: a responder MUST reject other lengths with `malformedRequest`);
/// - answers are pre-signed and cached per certificate (`OCSPResponseCache`): the status is read from the store for
///   every request, and a cached answer is served while it states that status and is less than half its validity
///   old; otherwise one answer is signed (once, however many requests wait for it). So a revocation changes the answer
///   at once, and N requests for a certificate cost one signature of the CA key per half hour, not N.
/// - A cached answer cannot carry each request's nonce, so the nonce is not echoed: RFC 5019 §2.2.1 tells a responder
///   that only pre-produces responses to answer without one, and RFC 8954 (RFC 6960 §4.4.1) leaves the echo to the
///   responder. Freshness comes from `thisUpdate`/`nextUpdate` instead (`openssl ocsp` says "WARNING: no nonce in
///   response" and verifies the answer).
public struct OCSPResponder: Sendable {
    /// `OCSPResponseStatus`.
    public enum ResponseStatus: Int, Sendable {
        case successful = 0
        case malformedRequest = 1
        case internalError = 2
        case tryLater = 3
        case sigRequired = 5
        case unauthorized = 6
    }

    /// What one certificate's status is.
    public enum CertificateStatus: Hashable, Sendable {
        case good
        case revoked(time: Date, reasonCode: Int)
        case unknown
    }

    /// `id-pkix-ocsp-basic`.
    static let basicResponseOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1, 1]
    /// `id-pkix-ocsp-nonce`.
    static let nonceOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 48, 1, 2]
    static let sha1OID: ASN1ObjectIdentifier = [1, 3, 14, 3, 2, 26]
    static let sha256OID: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 1]
    static let sha384OID: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 2]
    static let sha512OID: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 3]

    /// Most CertIDs in one request (RFC 5019 §2.1.1).
    public static let maxCertIDs = 1
    /// Longest nonce accepted (RFC 8954 §2.1).
    public static let maxNonceLength = 32

    let ca: CertificateAuthority
    let store: any CredentialStore
    let clock: ServiceClock
    /// How long a response may be relied on (`nextUpdate - thisUpdate`); a cached one is signed again after half of it.
    public let validity: TimeInterval
    /// The pre-signed answers, and how many signatures they cost.
    let cache: OCSPResponseCache
    /// Issuer name and key hashes of the CA per hash algorithm.
    let issuerHashes: [ASN1ObjectIdentifier: (name: [UInt8], key: [UInt8])]
    /// SHA-1 of the CA's public key: the ResponderID `byKey`.
    let responderKeyHash: [UInt8]

    /// - Parameters:
    ///   - maxCached: answers kept (one per certificate and CertID hash algorithm); past it the oldest go.
    ///   - signingBurst, signingRate: fresh signatures allowed at once and per second (unknown serial numbers cannot be
    ///     cached usefully); past them the answer is `tryLater`, unsigned.
    public init(ca: CertificateAuthority, store: any CredentialStore, clock: ServiceClock = .system, validity: TimeInterval = 3_600,
                maxCached: Int = 20_000, signingBurst: Int = 100, signingRate: Double = 20) throws {
        self.ca = ca
        self.store = store
        self.clock = clock
        self.validity = validity
        self.cache = OCSPResponseCache(maxEntries: maxCached, signingBurst: signingBurst, signingRate: signingRate)
        var serializer = DER.Serializer()
        try serializer.serialize(ca.certificate.subject)
        let name = serializer.serializedBytes
        let key = Array(ca.certificate.publicKey.subjectPublicKeyInfoBytes)
        var hashes: [ASN1ObjectIdentifier: (name: [UInt8], key: [UInt8])] = [:]
        for oid in [Self.sha1OID, Self.sha256OID, Self.sha384OID, Self.sha512OID] {
            hashes[oid] = (Self.hash(oid, name)!, Self.hash(oid, key)!)
        }
        self.issuerHashes = hashes
        self.responderKeyHash = Self.hash(Self.sha1OID, key)!
    }

    static func hash(_ algorithm: ASN1ObjectIdentifier, _ bytes: [UInt8]) -> [UInt8]? {
        switch algorithm {
        case Self.sha1OID: Array(Insecure.SHA1.hash(data: bytes))
        case Self.sha256OID: Array(SHA256.hash(data: bytes))
        case Self.sha384OID: Array(SHA384.hash(data: bytes))
        case Self.sha512OID: Array(SHA512.hash(data: bytes))
        default: nil
        }
    }

    // MARK: Requests

    /// One `CertID` as received (echoed verbatim in the answer).
    struct CertID {
        var encoded: ArraySlice<UInt8>
        var hashAlgorithm: ASN1ObjectIdentifier
        var issuerNameHash: [UInt8]
        var issuerKeyHash: [UInt8]
        var serialNumber: [UInt8]
    }

    struct ParsedRequest {
        var certIDs: [CertID]
        /// The nonce extension as received (a whole `Extension`); checked, not echoed (see the type's notes).
        var nonceExtension: ArraySlice<UInt8>?
    }

    /// Signatures of the CA key made for OCSP answers since start.
    public var signatureCount: Int { self.cache.signatureCount }
    /// Answers served from the cache (no signature of their own), and requests refused for the signing budget, since start.
    public var cacheStatistics: (hits: Int, signatures: Int, refusals: Int) {
        (self.cache.hitCount, self.cache.signatureCount, self.cache.refusalCount)
    }

    static let tag0 = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
    static let tag1 = ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)
    static let tag2 = ASN1Identifier(tagWithNumber: 2, tagClass: .contextSpecific)

    static func parse(_ bytes: [UInt8]) throws -> ParsedRequest {
        let root = try DER.parse(bytes)
        return try DER.sequence(root, identifier: .sequence) { nodes in
            guard let tbs = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "no tbsRequest") }
            // A signature on the request, if any, is not required and not checked.
            if let signature = nodes.next(), signature.identifier != Self.tag0 {
                throw ASN1Error.invalidASN1Object(reason: "unexpected field after tbsRequest")
            }
            return try DER.sequence(tbs, identifier: .sequence) { nodes in
                var node = nodes.next()
                if let version = node, version.identifier == Self.tag0 {
                    let value = try DER.explicitlyTagged(version, tagNumber: 0, tagClass: .contextSpecific) { try Int(derEncoded: $0) }
                    guard value == 0 else { throw ASN1Error.invalidASN1Object(reason: "unsupported OCSP request version \(value)") }
                    node = nodes.next()
                }
                if let requestor = node, requestor.identifier == Self.tag1 { node = nodes.next() }
                guard let list = node else { throw ASN1Error.invalidASN1Object(reason: "no requestList") }
                let certIDs = try DER.sequence(list, identifier: .sequence) { requests in
                    var certIDs: [CertID] = []
                    while let request = requests.next() {
                        guard certIDs.count < Self.maxCertIDs else {
                            throw ASN1Error.invalidASN1Object(reason: "more than \(Self.maxCertIDs) CertID in one request")
                        }
                        certIDs.append(try DER.sequence(request, identifier: .sequence) { fields in
                            guard let certID = fields.next() else { throw ASN1Error.invalidASN1Object(reason: "no reqCert") }
                            if let extensions = fields.next(), extensions.identifier != Self.tag0 {
                                throw ASN1Error.invalidASN1Object(reason: "unexpected field in Request")
                            }
                            return try Self.parseCertID(certID)
                        })
                    }
                    return certIDs
                }
                guard !certIDs.isEmpty else { throw ASN1Error.invalidASN1Object(reason: "empty requestList") }
                var nonce: ArraySlice<UInt8>?
                if let extensions = nodes.next() {
                    guard extensions.identifier == Self.tag2 else { throw ASN1Error.invalidASN1Object(reason: "unexpected field in TBSRequest") }
                    nonce = try DER.explicitlyTagged(extensions, tagNumber: 2, tagClass: .contextSpecific) { node in
                        try DER.sequence(node, identifier: .sequence) { items in
                            var nonce: ArraySlice<UInt8>?
                            while let item = items.next() {
                                let (oid, value) = try DER.sequence(item, identifier: .sequence) { fields -> (ASN1ObjectIdentifier, ASN1Node?) in
                                    guard let oid = fields.next() else { throw ASN1Error.invalidASN1Object(reason: "empty Extension") }
                                    var last: ASN1Node?
                                    while let field = fields.next() { last = field }
                                    return (try ASN1ObjectIdentifier(derEncoded: oid), last)
                                }
                                if oid == Self.nonceOID {
                                    guard nonce == nil, let value else { throw ASN1Error.invalidASN1Object(reason: "nonce twice, or without a value") }
                                    try Self.checkNonce(value)
                                    nonce = item.encodedBytes
                                }
                            }
                            return nonce
                        }
                    }
                }
                return ParsedRequest(certIDs: certIDs, nonceExtension: nonce)
            }
        }
    }

    /// Checks a nonce's `extnValue`: the DER of `Nonce ::= OCTET STRING (SIZE(1..32))` (RFC 8954), or, from older
    /// clients, the nonce itself; either way 1 to `maxNonceLength` octets.
    static func checkNonce(_ extnValue: ASN1Node) throws {
        let value = try ASN1OctetString(derEncoded: extnValue).bytes
        let length = (try? ASN1OctetString(derEncoded: value))?.bytes.count ?? value.count
        guard (1...Self.maxNonceLength).contains(length) else {
            throw ASN1Error.invalidASN1Object(reason: "a nonce of \(length) octets (1 to \(Self.maxNonceLength))")
        }
    }

    static func parseCertID(_ node: ASN1Node) throws -> CertID {
        try DER.sequence(node, identifier: .sequence) { fields in
            guard let algorithm = fields.next(), let nameHash = fields.next(), let keyHash = fields.next(), let serial = fields.next() else {
                throw ASN1Error.invalidASN1Object(reason: "incomplete CertID")
            }
            // Parameters absent or NULL only: the CertID is echoed and keys the cache, so it cannot vary at will.
            let oid = try DER.sequence(algorithm, identifier: .sequence) { parts -> ASN1ObjectIdentifier in
                guard let oid = parts.next() else { throw ASN1Error.invalidASN1Object(reason: "empty AlgorithmIdentifier") }
                if let parameters = parts.next() { _ = try ASN1Null(derEncoded: parameters) }
                guard parts.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "unexpected field in AlgorithmIdentifier") }
                return try ASN1ObjectIdentifier(derEncoded: oid)
            }
            var serialBytes = Array(try ArraySlice<UInt8>(derEncoded: serial))
            while serialBytes.count > 1, serialBytes[0] == 0 { serialBytes.removeFirst() }
            // RFC 5280 serial numbers have at most 20 octets.
            guard serialBytes.count <= 32 else { throw ASN1Error.invalidASN1Object(reason: "serial number too long") }
            return CertID(
                encoded: node.encodedBytes, hashAlgorithm: oid, issuerNameHash: Array(try ASN1OctetString(derEncoded: nameHash).bytes),
                issuerKeyHash: Array(try ASN1OctetString(derEncoded: keyHash).bytes), serialNumber: serialBytes)
        }
    }

    // MARK: Answers

    /// An answer and, for a successful one, the validity it states (what HTTP caching headers are made of).
    public struct Answer: Sendable {
        /// The DER `OCSPResponse`.
        public var der: [UInt8]
        /// `thisUpdate` and `nextUpdate` of a successful answer; nil for an error status (never to be cached).
        public var thisUpdate: Date?
        public var nextUpdate: Date?
    }

    /// The DER `OCSPResponse` for a DER `OCSPRequest`: never throws, errors become OCSP error statuses.
    public func respond(to request: [UInt8]) async -> [UInt8] {
        await self.answer(to: request).der
    }

    /// The answer to a DER `OCSPRequest` with the validity it states: never throws, errors become OCSP error statuses.
    public func answer(to request: [UInt8]) async -> Answer {
        let parsed: ParsedRequest
        do {
            parsed = try Self.parse(request)
        } catch {
            return Answer(der: Self.errorResponse(.malformedRequest))
        }
        do {
            return try await self.answer(to: parsed)
        } catch {
            return Answer(der: Self.errorResponse(.internalError))
        }
    }

    /// Whether `certID` names a certificate of this CA (whose issuer name and key hashes it carries).
    func isOurs(_ certID: CertID) -> Bool {
        guard let hashes = self.issuerHashes[certID.hashAlgorithm] else { return false }
        return hashes.name == certID.issuerNameHash && hashes.key == certID.issuerKeyHash
    }

    /// The status of the certificate of this CA with `certID`'s serial number, as the store has it now.
    func status(of certID: CertID) async throws -> CertificateStatus {
        guard let credential = try await self.store.credential(serialNumber: CertificateAuthority.serialHex(Certificate.SerialNumber(bytes: certID.serialNumber[...])))
        else {
            return .unknown
        }
        guard let entry = try CRLEntry(credential: credential) else { return .good }
        return .revoked(time: entry.date, reasonCode: entry.reasonCode)
    }

    /// The answer to a parsed request (one CertID): the cached one while it states the current status and is fresh,
    /// else one signed now.
    func answer(to request: ParsedRequest) async throws -> Answer {
        guard request.certIDs.count == 1, let certID = request.certIDs.first else { return Answer(der: Self.errorResponse(.malformedRequest)) }
        guard self.isOurs(certID) else { return Answer(der: Self.errorResponse(.unauthorized)) }
        let status = try await self.status(of: certID)
        let now = CertificateAuthority.wholeSeconds(self.clock.now())
        let cached = try await self.cache.answer(for: Array(certID.encoded), status: status, now: now, freshFor: self.validity / 2) {
            try await self.sign(certID: certID, status: status, at: now)
        }
        guard let cached else { return Answer(der: Self.errorResponse(.tryLater)) }
        return Answer(der: cached.der, thisUpdate: cached.producedAt, nextUpdate: cached.producedAt.addingTimeInterval(self.validity))
    }

    /// A successful `OCSPResponse` for one certificate, produced at `now` and valid `validity`, signed by the CA key.
    func sign(certID: CertID, status: CertificateStatus, at now: Date) async throws -> [UInt8] {
        var tbs = DER.Serializer()
        try tbs.appendConstructedNode(identifier: .sequence) { coder in
            // version v1 is the DEFAULT: omitted. ResponderID byKey [2] EXPLICIT KeyHash.
            try coder.appendConstructedNode(identifier: Self.tag2) { coder in
                try coder.serialize(ASN1OctetString(contentBytes: self.responderKeyHash[...]))
            }
            try coder.serialize(try DERCoding.generalizedTime(now))
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    coder.serializeRawBytes(certID.encoded)
                    switch status {
                    case .good:
                        coder.serializeRawBytes([0x80, 0x00])  // good [0] IMPLICIT NULL
                    case .revoked(let time, let reasonCode):
                        try coder.appendConstructedNode(identifier: Self.tag1) { coder in
                            try coder.serialize(try DERCoding.generalizedTime(time))
                            try coder.appendConstructedNode(identifier: Self.tag0) { coder in
                                coder.serializeRawBytes(try DERCoding.enumerated(reasonCode))
                            }
                        }
                    case .unknown:
                        coder.serializeRawBytes([0x82, 0x00])  // unknown [2] IMPLICIT NULL
                    }
                    try coder.serialize(try DERCoding.generalizedTime(Self.thisUpdate(now: now, status: status)))
                    try coder.appendConstructedNode(identifier: Self.tag0) { coder in
                        try coder.serialize(try DERCoding.generalizedTime(now.addingTimeInterval(self.validity)))
                    }
                }
            }
            // No responseExtensions: no nonce in a pre-signed answer.
        }
        let tbsBytes = tbs.serializedBytes
        let algorithm = self.ca.privateKey.defaultSignatureAlgorithm
        let signature = try await self.ca.privateKey.signAsynchronously(bytes: tbsBytes, signatureAlgorithm: algorithm)
        var basic = DER.Serializer()
        try basic.appendConstructedNode(identifier: .sequence) { coder in
            coder.serializeRawBytes(tbsBytes)
            try DERCoding.serializeAlgorithmIdentifier(algorithm, into: &coder)
            try coder.serialize(ASN1BitString(bytes: signature.rawRepresentation[...]))
            coder.appendConstructedNode(identifier: Self.tag0) { coder in
                coder.appendConstructedNode(identifier: .sequence) { coder in
                    coder.serializeRawBytes(self.ca.certificateDER)
                }
            }
        }
        var response = DER.Serializer()
        try response.appendConstructedNode(identifier: .sequence) { coder in
            coder.serializeRawBytes(try DERCoding.enumerated(ResponseStatus.successful.rawValue))
            try coder.appendConstructedNode(identifier: Self.tag0) { coder in
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    try coder.serialize(Self.basicResponseOID)
                    try coder.serialize(ASN1OctetString(contentBytes: basic.serializedBytes[...]))
                }
            }
        }
        return response.serializedBytes
    }

    /// `thisUpdate` of an answer produced at `now`: a minute earlier (`CertificateAuthority.clockSkewAllowance`), so
    /// that a relying party whose clock is a little behind ours does not find the answer "too recent" and throw it
    /// away; never before the revocation it states (a status is not claimed before it held). `producedAt` stays `now`.
    static func thisUpdate(now: Date, status: CertificateStatus) -> Date {
        let backdated = now.addingTimeInterval(-CertificateAuthority.clockSkewAllowance)
        if case .revoked(let time, _) = status { return min(now, max(backdated, CertificateAuthority.wholeSeconds(time))) }
        return backdated
    }

    /// An unsuccessful `OCSPResponse` (status only, no responseBytes).
    public static func errorResponse(_ status: ResponseStatus) -> [UInt8] {
        // SEQUENCE { ENUMERATED status }
        [0x30, 0x03, 0x0A, 0x01, UInt8(status.rawValue)]
    }
}
