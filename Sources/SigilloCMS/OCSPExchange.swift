import Crypto
import Foundation
import SwiftASN1

/// An OCSP request for one certificate (RFC 6960 §4.1), as a client sends it: SHA-1 `CertID`, no signature, no
/// nonce (RFC 5019 responders answer from pre-signed responses).
///
/// ```
/// OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
/// TBSRequest ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] ..., requestList SEQUENCE OF Request, ... }
/// Request ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
/// CertID ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
///                       issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber }
/// ```
public struct OCSPQuery: Hashable, Sendable {
    /// SHA-1 of the issuer's subject name (DER).
    public let issuerNameHash: [UInt8]
    /// SHA-1 of the issuer's `subjectPublicKey` bits.
    public let issuerKeyHash: [UInt8]
    /// The certificate's serial number, magnitude.
    public let serialNumber: [UInt8]

    /// A request for `certificate`, issued by `issuer`.
    ///
    /// - Throws: `CMSError` when `issuer` is not the certificate's issuer (by name).
    public init(certificate: SignerCertificate, issuer: SignerCertificate) throws {
        guard certificate.issuerDER == issuer.subjectDER else {
            throw CMSError("the OCSP request needs the certificate's issuer: the CA certificate given has another subject")
        }
        self.issuerNameHash = Array(Insecure.SHA1.hash(data: issuer.subjectDER))
        self.issuerKeyHash = Array(Insecure.SHA1.hash(data: issuer.subjectPublicKeyBits))
        self.serialNumber = certificate.serialNumber
    }

    /// The DER `OCSPRequest`.
    public func derEncoded() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { serializer in
            try serializer.appendConstructedNode(identifier: .sequence) { serializer in  // TBSRequest
                try serializer.appendConstructedNode(identifier: .sequence) { serializer in  // requestList
                    try serializer.appendConstructedNode(identifier: .sequence) { serializer in  // Request
                        try serializer.appendConstructedNode(identifier: .sequence) { serializer in  // CertID
                            try serializer.appendConstructedNode(identifier: .sequence) { serializer in
                                try serializer.serialize(CMSOID.sha1)
                                try serializer.serialize(ASN1Null())
                            }
                            try serializer.serialize(ASN1OctetString(contentBytes: self.issuerNameHash[...]))
                            try serializer.serialize(ASN1OctetString(contentBytes: self.issuerKeyHash[...]))
                            serializer.appendPrimitiveNode(identifier: .integer) { bytes in
                                if self.serialNumber.isEmpty { bytes.append(0); return }
                                if self.serialNumber.first! & 0x80 != 0 { bytes.append(0) }
                                bytes.append(contentsOf: self.serialNumber)
                            }
                        }
                    }
                }
            }
        }
        return serializer.serializedBytes
    }
}

/// A DER `OCSPResponse` read back (RFC 6960 §4.2.1): its status and, when successful, the basic response.
///
/// ```
/// OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
/// ResponseBytes ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }
/// BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm AlgorithmIdentifier,
///                                  signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
/// ResponseData ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, responderID ResponderID,
///     producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse, responseExtensions [1] EXPLICIT ... }
/// SingleResponse ::= SEQUENCE { certID CertID, certStatus CertStatus, thisUpdate GeneralizedTime,
///     nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, singleExtensions [1] EXPLICIT Extensions OPTIONAL }
/// CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL }
/// ```
public struct OCSPReply: Hashable, Sendable {
    /// A certificate's status.
    public enum CertificateStatus: Hashable, Sendable {
        case good
        case revoked(at: Date, reason: Int?)
        case unknown
    }

    /// One `SingleResponse`.
    public struct SingleResponse: Hashable, Sendable {
        public let hashAlgorithmOID: String
        public let issuerNameHash: [UInt8]
        public let issuerKeyHash: [UInt8]
        public let serialNumber: [UInt8]
        public let status: CertificateStatus
        public let thisUpdate: Date
        public let nextUpdate: Date?
    }

    /// The whole response, as received.
    public let der: [UInt8]
    /// The DER `ResponseData`, what the signature covers.
    public let tbsResponseData: [UInt8]
    /// The signature algorithm, dotted.
    public let signatureAlgorithmOID: String
    /// The signature bits.
    public let signature: [UInt8]
    /// The certificates the responder sent (a delegated responder's), DER.
    public let certificates: [[UInt8]]
    public let producedAt: Date
    public let responses: [SingleResponse]

    /// Parses a response and requires it `successful` with a basic response.
    ///
    /// - Throws: `CMSError` with the status name (`malformedRequest`, `internalError`, `tryLater`, `sigRequired`,
    ///   `unauthorized`) when it is not successful, or what is malformed.
    public init(der: [UInt8]) throws {
        self.der = der
        let fields = try DERReading.children(DERReading.parse(der, what: "OCSP response"), what: "OCSPResponse")
        guard let statusNode = fields.first else { throw CMSError("OCSPResponse: no status") }
        let status = try DERReading.enumerated(statusNode, what: "responseStatus")
        guard status == 0 else {
            let names = [1: "malformedRequest", 2: "internalError", 3: "tryLater", 5: "sigRequired", 6: "unauthorized"]
            throw CMSError("the OCSP responder answered \(names[status] ?? "status \(status)") instead of a response")
        }
        guard fields.count == 2, let bytesNode = try DERReading.children(fields[1], DERReading.context(0), what: "responseBytes").first else {
            throw CMSError("OCSPResponse: successful but without responseBytes")
        }
        let responseBytes = try DERReading.children(bytesNode, what: "ResponseBytes")
        guard responseBytes.count == 2, (try? ASN1ObjectIdentifier(derEncoded: responseBytes[0])) == CMSOID.ocspBasic else {
            throw CMSError("OCSPResponse: not a basic OCSP response")
        }
        let basicBytes = Array(try DERReading.primitive(responseBytes[1], .octetString, what: "response"))
        let basic = try DERReading.children(DERReading.parse(basicBytes, what: "BasicOCSPResponse"), what: "BasicOCSPResponse")
        guard basic.count >= 3 else { throw CMSError("BasicOCSPResponse: too few fields") }
        self.tbsResponseData = Array(basic[0].encodedBytes)
        do {
            guard let algorithm = try DERReading.children(basic[1], what: "signatureAlgorithm").first else {
                throw CMSError("BasicOCSPResponse: empty signature algorithm")
            }
            self.signatureAlgorithmOID = try ASN1ObjectIdentifier(derEncoded: algorithm).description
            self.signature = Array(try ASN1BitString(derEncoded: basic[2]).bytes)
        } catch let error as CMSError {
            throw error
        } catch {
            throw CMSError("BasicOCSPResponse: \(error)")
        }
        if basic.count >= 4, let list = try DERReading.children(basic[3], DERReading.context(0), what: "certs").first {
            self.certificates = try DERReading.children(list, what: "certs").map { Array($0.encodedBytes) }
        } else {
            self.certificates = []
        }

        var data = try DERReading.children(basic[0], what: "ResponseData")
        if data.first?.identifier == DERReading.context(0) { data.removeFirst() }  // version
        guard data.count >= 3 else { throw CMSError("ResponseData: too few fields") }
        self.producedAt = try DERReading.date(data[1], what: "producedAt")
        self.responses = try DERReading.children(data[2], what: "responses").map(Self.singleResponse)
    }

    static func singleResponse(_ node: ASN1Node) throws -> SingleResponse {
        let fields = try DERReading.children(node, what: "SingleResponse")
        guard fields.count >= 3 else { throw CMSError("SingleResponse: too few fields") }
        let certID = try DERReading.children(fields[0], what: "CertID")
        guard certID.count == 4, let algorithm = try DERReading.children(certID[0], what: "hashAlgorithm").first else {
            throw CMSError("CertID: malformed")
        }
        let status: CertificateStatus
        switch fields[1].identifier {
        case DERReading.context(0):
            status = .good
        case DERReading.context(1):
            let info = try DERReading.children(fields[1], DERReading.context(1), what: "RevokedInfo")
            guard let time = info.first else { throw CMSError("RevokedInfo: no revocation time") }
            var reason: Int?
            if info.count >= 2, let reasonNode = try DERReading.children(info[1], DERReading.context(0), what: "revocationReason").first {
                reason = try DERReading.enumerated(reasonNode, what: "CRLReason")
            }
            status = .revoked(at: try DERReading.date(time, what: "revocationTime"), reason: reason)
        case DERReading.context(2):
            status = .unknown
        default:
            throw CMSError("SingleResponse: unknown certStatus \(fields[1].identifier)")
        }
        var nextUpdate: Date?
        if let wrapper = fields.dropFirst(3).first(where: { $0.identifier == DERReading.context(0) }),
            let time = try DERReading.children(wrapper, DERReading.context(0), what: "nextUpdate").first
        {
            nextUpdate = try DERReading.date(time, what: "nextUpdate")
        }
        do {
            return SingleResponse(
                hashAlgorithmOID: try ASN1ObjectIdentifier(derEncoded: algorithm).description,
                issuerNameHash: Array(try DERReading.primitive(certID[1], .octetString, what: "issuerNameHash")),
                issuerKeyHash: Array(try DERReading.primitive(certID[2], .octetString, what: "issuerKeyHash")),
                serialNumber: DERReading.magnitude(try DERReading.primitive(certID[3], .integer, what: "serialNumber")),
                status: status,
                thisUpdate: try DERReading.date(fields[2], what: "thisUpdate"),
                nextUpdate: nextUpdate
            )
        }
    }

    /// The answer about the certificate of `query`.
    ///
    /// - Throws: `CMSError` when the response says nothing about it.
    public func response(for query: OCSPQuery) throws -> SingleResponse {
        let sha1 = CMSOID.sha1.description
        guard let single = self.responses.first(where: {
            $0.hashAlgorithmOID == sha1 && $0.issuerNameHash == query.issuerNameHash && $0.issuerKeyHash == query.issuerKeyHash
                && $0.serialNumber == query.serialNumber
        }) else {
            throw CMSError("the OCSP response is not about the certificate asked for")
        }
        return single
    }
}

/// A DER `CertificateList` (an X.509 CRL, RFC 5280 §5.1) read back: what a client checks before embedding it.
///
/// ```
/// CertificateList ::= SEQUENCE { tbsCertList TBSCertList, signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }
/// TBSCertList ::= SEQUENCE { version Version OPTIONAL, signature AlgorithmIdentifier, issuer Name, thisUpdate Time,
///     nextUpdate Time OPTIONAL, revokedCertificates SEQUENCE OF SEQUENCE { userCertificate CertificateSerialNumber,
///     revocationDate Time, crlEntryExtensions Extensions OPTIONAL } OPTIONAL, crlExtensions [0] EXPLICIT Extensions OPTIONAL }
/// ```
public struct CRLInfo: Hashable, Sendable {
    /// The whole CRL, as received.
    public let der: [UInt8]
    /// The DER `TBSCertList`, what the signature covers.
    public let tbsCertList: [UInt8]
    /// The issuer `Name`, DER.
    public let issuerDER: [UInt8]
    public let thisUpdate: Date
    public let nextUpdate: Date?
    /// The serial numbers listed (magnitudes) with their revocation dates.
    public let revoked: [[UInt8]: Date]
    /// The signature algorithm, dotted.
    public let signatureAlgorithmOID: String
    /// The signature bits.
    public let signature: [UInt8]

    /// Parses a DER CRL.
    ///
    /// - Throws: `CMSError` when it is not one.
    public init(der: [UInt8]) throws {
        self.der = der
        let fields = try DERReading.children(DERReading.parse(der, what: "CRL"), what: "CertificateList")
        guard fields.count == 3 else { throw CMSError("CertificateList: expected three fields") }
        self.tbsCertList = Array(fields[0].encodedBytes)
        var tbs = try DERReading.children(fields[0], what: "TBSCertList")
        if tbs.first?.identifier == .integer { tbs.removeFirst() }
        guard tbs.count >= 3 else { throw CMSError("TBSCertList: too few fields") }
        self.issuerDER = Array(tbs[1].encodedBytes)
        self.thisUpdate = try DERReading.date(tbs[2], what: "thisUpdate")
        var rest = tbs.dropFirst(3)
        if let next = rest.first, next.identifier == .utcTime || next.identifier == .generalizedTime {
            self.nextUpdate = try DERReading.date(next, what: "nextUpdate")
            rest = rest.dropFirst()
        } else {
            self.nextUpdate = nil
        }
        var revoked: [[UInt8]: Date] = [:]
        if let list = rest.first, list.identifier == .sequence {
            for entry in try DERReading.children(list, what: "revokedCertificates") {
                let parts = try DERReading.children(entry, what: "revoked certificate")
                guard parts.count >= 2 else { throw CMSError("CRL entry: too few fields") }
                revoked[DERReading.magnitude(try DERReading.primitive(parts[0], .integer, what: "userCertificate"))] =
                    try DERReading.date(parts[1], what: "revocationDate")
            }
        }
        self.revoked = revoked
        do {
            guard let algorithm = try DERReading.children(fields[1], what: "signatureAlgorithm").first else {
                throw CMSError("CertificateList: empty signature algorithm")
            }
            self.signatureAlgorithmOID = try ASN1ObjectIdentifier(derEncoded: algorithm).description
            self.signature = Array(try ASN1BitString(derEncoded: fields[2]).bytes)
        } catch let error as CMSError {
            throw error
        } catch {
            throw CMSError("CertificateList: \(error)")
        }
    }
}
