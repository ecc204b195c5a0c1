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
/// Each CertID is matched against the CA with SHA-1, SHA-256, SHA-384 or SHA-512; a certificate of another
/// issuer, or a serial number the CA never issued, is `unknown`. A suspended certificate is `revoked` with reason
/// certificateHold. A nonce in the request is echoed. Anything unparseable gets a `malformedRequest` response and a
/// failure of the store or the token an `internalError` response: the caller always has DER to send.
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

    let ca: CertificateAuthority
    let store: any CredentialStore
    let clock: ServiceClock
    /// How long a response may be relied on (`nextUpdate - thisUpdate`).
    public let validity: TimeInterval
    /// Issuer name and key hashes of the CA per hash algorithm.
    let issuerHashes: [ASN1ObjectIdentifier: (name: [UInt8], key: [UInt8])]
    /// SHA-1 of the CA's public key: the ResponderID `byKey`.
    let responderKeyHash: [UInt8]

    public init(ca: CertificateAuthority, store: any CredentialStore, clock: ServiceClock = .system, validity: TimeInterval = 3_600) throws {
        self.ca = ca
        self.store = store
        self.clock = clock
        self.validity = validity
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
        /// The nonce extension as received (a whole `Extension`), to echo.
        var nonceExtension: ArraySlice<UInt8>?
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
                                let oid = try DER.sequence(item, identifier: .sequence) { fields -> ASN1ObjectIdentifier in
                                    guard let oid = fields.next() else { throw ASN1Error.invalidASN1Object(reason: "empty Extension") }
                                    while fields.next() != nil {}
                                    return try ASN1ObjectIdentifier(derEncoded: oid)
                                }
                                if oid == Self.nonceOID { nonce = item.encodedBytes }
                            }
                            return nonce
                        }
                    }
                }
                return ParsedRequest(certIDs: certIDs, nonceExtension: nonce)
            }
        }
    }

    static func parseCertID(_ node: ASN1Node) throws -> CertID {
        try DER.sequence(node, identifier: .sequence) { fields in
            guard let algorithm = fields.next(), let nameHash = fields.next(), let keyHash = fields.next(), let serial = fields.next() else {
                throw ASN1Error.invalidASN1Object(reason: "incomplete CertID")
            }
            let oid = try DER.sequence(algorithm, identifier: .sequence) { parts -> ASN1ObjectIdentifier in
                guard let oid = parts.next() else { throw ASN1Error.invalidASN1Object(reason: "empty AlgorithmIdentifier") }
                while parts.next() != nil {}
                return try ASN1ObjectIdentifier(derEncoded: oid)
            }
            var serialBytes = Array(try ArraySlice<UInt8>(derEncoded: serial))
            while serialBytes.count > 1, serialBytes[0] == 0 { serialBytes.removeFirst() }
            return CertID(
                encoded: node.encodedBytes, hashAlgorithm: oid, issuerNameHash: Array(try ASN1OctetString(derEncoded: nameHash).bytes),
                issuerKeyHash: Array(try ASN1OctetString(derEncoded: keyHash).bytes), serialNumber: serialBytes)
        }
    }

    // MARK: Answers

    /// The DER `OCSPResponse` for a DER `OCSPRequest`: never throws, errors become OCSP error statuses.
    public func respond(to request: [UInt8]) async -> [UInt8] {
        let parsed: ParsedRequest
        do {
            parsed = try Self.parse(request)
        } catch {
            return Self.errorResponse(.malformedRequest)
        }
        do {
            return try await self.respond(to: parsed)
        } catch {
            return Self.errorResponse(.internalError)
        }
    }

    /// The status of the certificate `certID` names.
    func status(of certID: CertID) async throws -> CertificateStatus {
        guard let hashes = self.issuerHashes[certID.hashAlgorithm], hashes.name == certID.issuerNameHash, hashes.key == certID.issuerKeyHash,
              let credential = try await self.store.credential(serialNumber: CertificateAuthority.serialHex(Certificate.SerialNumber(bytes: certID.serialNumber[...])))
        else {
            return .unknown
        }
        guard let entry = try CRLEntry(credential: credential) else { return .good }
        return .revoked(time: entry.date, reasonCode: entry.reasonCode)
    }

    func respond(to request: ParsedRequest) async throws -> [UInt8] {
        let now = CertificateAuthority.wholeSeconds(self.clock.now())
        var statuses: [CertificateStatus] = []
        for certID in request.certIDs {
            statuses.append(try await self.status(of: certID))
        }
        var tbs = DER.Serializer()
        try tbs.appendConstructedNode(identifier: .sequence) { coder in
            // version v1 is the DEFAULT: omitted. ResponderID byKey [2] EXPLICIT KeyHash.
            try coder.appendConstructedNode(identifier: Self.tag2) { coder in
                try coder.serialize(ASN1OctetString(contentBytes: self.responderKeyHash[...]))
            }
            try coder.serialize(try DERCoding.generalizedTime(now))
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                for (certID, status) in zip(request.certIDs, statuses) {
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
                        try coder.serialize(try DERCoding.generalizedTime(now))
                        try coder.appendConstructedNode(identifier: Self.tag0) { coder in
                            try coder.serialize(try DERCoding.generalizedTime(now.addingTimeInterval(self.validity)))
                        }
                    }
                }
            }
            if let nonce = request.nonceExtension {
                coder.appendConstructedNode(identifier: Self.tag1) { coder in
                    coder.appendConstructedNode(identifier: .sequence) { coder in
                        coder.serializeRawBytes(nonce)
                    }
                }
            }
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

    /// An unsuccessful `OCSPResponse` (status only, no responseBytes).
    public static func errorResponse(_ status: ResponseStatus) -> [UInt8] {
        // SEQUENCE { ENUMERATED status }
        [0x30, 0x03, 0x0A, 0x01, UInt8(status.rawValue)]
    }
}
