import Foundation
import PKCS11
import SigilloDomain
import SwiftASN1
import X509

/// Writes time-stamp tokens: a `TSTInfo` (RFC 3161 §2.4.2) in a CMS `SignedData` (RFC 5652) signed by the TSA key in
/// the token.
///
/// ```
/// TSTInfo ::= SEQUENCE { version INTEGER { v1(1) }, policy TSAPolicyId, messageImprint MessageImprint,
///                        serialNumber INTEGER, genTime GeneralizedTime, accuracy Accuracy OPTIONAL,
///                        ordering BOOLEAN DEFAULT FALSE, nonce INTEGER OPTIONAL, tsa [0] GeneralName OPTIONAL,
///                        extensions [1] IMPLICIT Extensions OPTIONAL }
/// Accuracy ::= SEQUENCE { seconds INTEGER OPTIONAL, millis [0] INTEGER (1..999) OPTIONAL,
///                         micros [1] INTEGER (1..999) OPTIONAL }
/// ```
/// The token is `ContentInfo { id-signedData, SignedData v3 }` (v3: the content type is not id-data) with the
/// `TSTInfo` encapsulated under `id-ct-TSTInfo`, one `SignerInfo` v1 (issuer and serial number) whose signed
/// attributes are contentType, messageDigest and signingCertificateV2 (RFC 5816: ESSCertIDv2 with the SHA-256 of the
/// TSA certificate and its issuer and serial number), and, when asked, the TSA certificate and its chain.
struct TimeStampTokenWriter: Sendable {
    /// The TSA key in the token.
    let key: TokenPrivateKey
    /// The hash of the content and signed attributes: SHA-384 for a P-384 key, SHA-256 otherwise.
    let digest: HashAlgorithm
    let signatureAlgorithm: Certificate.SignatureAlgorithm
    /// The TSA certificate, DER, then its chain (issuing CA certificates).
    let certificates: [[UInt8]]
    /// Parts of the TSA certificate as encoded in it.
    let issuerDER: [UInt8]
    let serialNumberDER: [UInt8]
    let subjectDER: [UInt8]
    /// SHA-256 of the TSA certificate (ESSCertIDv2 `certHash`).
    let certificateHash: [UInt8]

    init(key: TokenPrivateKey, certificateDER: [UInt8], chain: [[UInt8]]) throws {
        self.key = key
        switch key.kind {
        case .p256: (self.digest, self.signatureAlgorithm) = (.sha256, .ecdsaWithSHA256)
        case .p384: (self.digest, self.signatureAlgorithm) = (.sha384, .ecdsaWithSHA384)
        case .rsa: (self.digest, self.signatureAlgorithm) = (.sha256, .sha256WithRSAEncryption)
        }
        var certificates = [certificateDER]
        for certificate in chain where !certificates.contains(certificate) {
            certificates.append(certificate)
        }
        self.certificates = certificates
        let fields = try Self.tbsFields(certificateDER)
        self.serialNumberDER = fields.serialNumber
        self.issuerDER = fields.issuer
        self.subjectDER = fields.subject
        self.certificateHash = HashAlgorithm.sha256.digest(of: certificateDER)
    }

    /// The serial number, issuer and subject of a DER certificate, as encoded in it.
    static func tbsFields(_ der: [UInt8]) throws -> (serialNumber: [UInt8], issuer: [UInt8], subject: [UInt8]) {
        let root = try DER.parse(der)
        guard root.identifier == .sequence, case .constructed(let certificate) = root.content,
              let tbs = certificate.first(where: { _ in true }), tbs.identifier == .sequence,
              case .constructed(let tbsNodes) = tbs.content
        else {
            throw SigilloError(.invalidRequest, "not an X.509 certificate")
        }
        var fields = Array(tbsNodes)
        if let first = fields.first, first.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
            fields.removeFirst()
        }
        // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
        guard fields.count >= 6, fields[0].identifier == .integer, fields[2].identifier == .sequence, fields[4].identifier == .sequence else {
            throw SigilloError(.invalidRequest, "not an X.509 certificate")
        }
        return (Array(fields[0].encodedBytes), Array(fields[2].encodedBytes), Array(fields[4].encodedBytes))
    }

    // MARK: TSTInfo

    /// A random positive serial number of 16 octets, DER INTEGER.
    ///
    /// Unique across nodes without coordination: 126 bits come from the system CSPRNG (the top bit is cleared, so the
    /// number is positive, and the next one set, so the encoding is exactly 16 octets), so any two nodes, or the same
    /// node after a restart, draw the same number with probability 2⁻¹²⁶; over 2⁴⁰ tokens in all, a collision has a
    /// probability below 2⁻⁴⁷. No counter or node id is kept, so nothing has to be shared or persisted.
    static func randomSerialNumber() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        bytes[0] = (bytes[0] & 0x7F) | 0x40
        return [0x02, 0x10] + bytes
    }

    /// `date` as a DER GeneralizedTime (tag included), UTC, to the millisecond: `YYYYMMDDHHMMSS[.f[f[f]]]Z`, the
    /// fraction without trailing zeros and left out when zero (X.690 §11.7).
    static func generalizedTime(_ date: Date) throws -> [UInt8] {
        let milliseconds = (date.timeIntervalSince1970 * 1000).rounded(.down)
        guard milliseconds.isFinite, milliseconds >= 0, milliseconds < 253_402_300_800_000 else {
            throw SigilloError(.internalError, "the time \(date) cannot be a GeneralizedTime")
        }
        let whole = Int64(milliseconds)
        let seconds = whole / 1000
        let fraction = Int(whole % 1000)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: TimeInterval(seconds)))
        var text = String(format: "%04d%02d%02d%02d%02d%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
        if fraction > 0 {
            var digits = String(format: "%03d", fraction)
            while digits.hasSuffix("0") { digits.removeLast() }
            text += "." + digits
        }
        text += "Z"
        return [0x18, UInt8(text.utf8.count)] + Array(text.utf8)
    }

    static let tag0 = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
    static let tag4 = ASN1Identifier(tagWithNumber: 4, tagClass: .contextSpecific)

    /// The DER `TSTInfo` answering `request`.
    func tstInfo(
        request: TimeStampRequest, policy: ASN1ObjectIdentifier, serialNumberDER: [UInt8], genTime: Date,
        accuracy: TimeStampAuthority.Accuracy, includeTSAName: Bool
    ) throws -> [UInt8] {
        let genTimeDER = try Self.generalizedTime(genTime)
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(1)
            try coder.serialize(policy)
            coder.serializeRawBytes(request.messageImprintDER)
            coder.serializeRawBytes(serialNumberDER)
            coder.serializeRawBytes(genTimeDER)
            if accuracy.seconds > 0 || accuracy.millis > 0 {
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    if accuracy.seconds > 0 { try coder.serialize(accuracy.seconds) }
                    if accuracy.millis > 0 { try accuracy.millis.serialize(into: &coder, withIdentifier: Self.tag0) }
                }
            }
            // ordering DEFAULT FALSE: left out.
            if let nonce = request.nonceDER { coder.serializeRawBytes(nonce) }
            if includeTSAName {
                // tsa [0] GeneralName (explicit: a CHOICE), directoryName [4] Name (explicit: a CHOICE too).
                coder.appendConstructedNode(identifier: Self.tag0) { coder in
                    coder.appendConstructedNode(identifier: Self.tag4) { coder in
                        coder.serializeRawBytes(self.subjectDER)
                    }
                }
            }
        }
        return serializer.serializedBytes
    }

    // MARK: SignedData

    /// `Attribute ::= SEQUENCE { attrType OBJECT IDENTIFIER, attrValues SET OF AttributeValue }` with one value.
    static func attribute(_ type: ASN1ObjectIdentifier, value: (inout DER.Serializer) throws -> Void) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(type)
            try coder.appendConstructedNode(identifier: .set) { coder in
                try value(&coder)
            }
        }
        return serializer.serializedBytes
    }

    /// The signed attributes, each DER, in DER SET OF order.
    func signedAttributes(tstInfo: [UInt8]) throws -> [[UInt8]] {
        let attributes = try [
            Self.attribute(TimeStampOID.contentType) { try $0.serialize(TimeStampOID.tstInfo) },
            Self.attribute(TimeStampOID.messageDigest) { try $0.serialize(ASN1OctetString(contentBytes: self.digest.digest(of: tstInfo)[...])) },
            Self.attribute(TimeStampOID.signingCertificateV2) { try self.serializeSigningCertificateV2(into: &$0) },
        ]
        return attributes.sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// ```
    /// SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies SEQUENCE OF PolicyInformation OPTIONAL }
    /// ESSCertIDv2 ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier DEFAULT {id-sha256}, certHash OCTET STRING,
    ///                            issuerSerial IssuerSerial OPTIONAL }
    /// IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber CertificateSerialNumber }
    /// ```
    /// SHA-256 is the DEFAULT, so `hashAlgorithm` is left out.
    func serializeSigningCertificateV2(into coder: inout DER.Serializer) throws {
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.appendConstructedNode(identifier: .sequence) { coder in
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    try coder.serialize(ASN1OctetString(contentBytes: self.certificateHash[...]))
                    coder.appendConstructedNode(identifier: .sequence) { coder in
                        coder.appendConstructedNode(identifier: .sequence) { coder in
                            coder.appendConstructedNode(identifier: Self.tag4) { coder in
                                coder.serializeRawBytes(self.issuerDER)
                            }
                        }
                        coder.serializeRawBytes(self.serialNumberDER)
                    }
                }
            }
        }
    }

    /// `AlgorithmIdentifier` of the digest, parameters absent (RFC 5754 §2).
    func serializeDigestAlgorithm(into coder: inout DER.Serializer) throws {
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(TimeStampOID.digest(self.digest))
        }
    }

    /// The DER `TimeStampToken` (`ContentInfo` of the `SignedData`) over `tstInfo`, signed in the token.
    ///
    /// - Parameter includeCertificates: put the TSA certificate and its chain in `certificates` (`certReq`).
    /// - Throws: `PKCS11Error` from the token; `ASN1Error` when encoding fails.
    func sign(tstInfo: [UInt8], includeCertificates: Bool) async throws -> [UInt8] {
        let attributes = try self.signedAttributes(tstInfo: tstInfo)
        // What is signed is the DER SET OF Attribute (tag 0x31), what is sent the same content under [0] IMPLICIT.
        var signedSet = DER.Serializer()
        signedSet.appendConstructedNode(identifier: .set) { coder in
            for attribute in attributes { coder.serializeRawBytes(attribute) }
        }
        let signature = try await self.key.signAsynchronously(bytes: signedSet.serializedBytes, signatureAlgorithm: self.signatureAlgorithm)
        // ECDSA: a DER ECDSA-Sig-Value, as CMS wants (RFC 5753); RSA: the PKCS#1 v1.5 signature.
        let signatureBytes = signature.rawRepresentation
        let certificates = includeCertificates ? try self.certificates.map { ASN1Any(derEncoded: try DER.parse($0)) } : []

        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(TimeStampOID.signedData)
            try coder.appendConstructedNode(identifier: Self.tag0) { coder in
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    try coder.serialize(3)  // CMSVersion v3: eContentType is not id-data
                    try coder.appendConstructedNode(identifier: .set) { coder in
                        try self.serializeDigestAlgorithm(into: &coder)
                    }
                    try coder.appendConstructedNode(identifier: .sequence) { coder in
                        try coder.serialize(TimeStampOID.tstInfo)
                        try coder.appendConstructedNode(identifier: Self.tag0) { coder in
                            try coder.serialize(ASN1OctetString(contentBytes: tstInfo[...]))
                        }
                    }
                    if !certificates.isEmpty {
                        // certificates [0] IMPLICIT CertificateSet, DER-sorted.
                        try coder.serializeSetOf(certificates, identifier: Self.tag0)
                    }
                    try coder.appendConstructedNode(identifier: .set) { coder in
                        try coder.appendConstructedNode(identifier: .sequence) { coder in
                            try coder.serialize(1)  // v1: issuerAndSerialNumber
                            coder.appendConstructedNode(identifier: .sequence) { coder in
                                coder.serializeRawBytes(self.issuerDER)
                                coder.serializeRawBytes(self.serialNumberDER)
                            }
                            try self.serializeDigestAlgorithm(into: &coder)
                            coder.appendConstructedNode(identifier: Self.tag0) { coder in
                                for attribute in attributes { coder.serializeRawBytes(attribute) }
                            }
                            try DERCoding.serializeAlgorithmIdentifier(self.signatureAlgorithm, into: &coder)
                            try coder.serialize(ASN1OctetString(contentBytes: signatureBytes[...]))
                        }
                    }
                }
            }
        }
        return serializer.serializedBytes
    }
}
