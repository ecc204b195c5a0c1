import SigilloDomain
import Foundation
import SwiftASN1
import X509

/// One certificate on a CRL: revoked for good, or on hold (suspended).
public struct CRLEntry: Hashable, Sendable {
    /// Why the certificate is listed.
    public enum Status: Hashable, Sendable {
        /// Revoked (irreversible) with an RFC 5280 reason.
        case revoked(RevocationReason)
        /// Suspended: `certificateHold` (6) with the hold instruction `id-holdinstruction-reject`.
        case onHold
    }

    public var serialNumber: Certificate.SerialNumber
    /// When the certificate was revoked or suspended.
    public var date: Date
    public var status: Status

    public init(serialNumber: Certificate.SerialNumber, date: Date, status: Status) {
        self.serialNumber = serialNumber
        self.date = CertificateAuthority.wholeSeconds(date)
        self.status = status
    }

    /// The entry for a suspended or revoked credential; nil for an active one.
    ///
    /// - Throws: `SigilloError.internalError` if the stored serial number is not hex.
    public init?(credential: Credential) throws {
        let status: Status
        let date: Date
        switch credential.status {
        case .active:
            return nil
        case .suspended:
            status = .onHold
            date = credential.suspendedAt ?? credential.notBefore
        case .revoked:
            status = .revoked(credential.revocationReason ?? .unspecified)
            date = credential.revokedAt ?? credential.notBefore
        }
        guard let bytes = Hex.bytes(credential.serialNumber), !bytes.isEmpty else {
            throw SigilloError(.internalError, "credential \(credential.id) has a malformed serial number")
        }
        self.init(serialNumber: Certificate.SerialNumber(bytes: bytes), date: date, status: status)
    }

    /// The RFC 5280 `CRLReason` code.
    public var reasonCode: Int {
        switch self.status {
        case .revoked(let reason): reason.code
        case .onHold: 6
        }
    }
}

/// Builds X.509 v2 CRLs (RFC 5280 §5) signed by the CA key in the token.
///
/// ```
/// CertificateList ::= SEQUENCE { tbsCertList TBSCertList, signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }
/// TBSCertList ::= SEQUENCE {
///     version INTEGER (v2 = 1), signature AlgorithmIdentifier, issuer Name, thisUpdate Time, nextUpdate Time,
///     revokedCertificates SEQUENCE OF SEQUENCE { userCertificate INTEGER, revocationDate Time,
///                                                crlEntryExtensions Extensions OPTIONAL } OPTIONAL,
///     crlExtensions [0] EXPLICIT Extensions OPTIONAL }
/// ```
/// swift-certificates does not model CRLs, so the DER is written here with SwiftASN1.
public enum CRLBuilder {
    /// `id-ce-cRLNumber`.
    static let crlNumberOID: ASN1ObjectIdentifier = [2, 5, 29, 20]
    /// `id-ce-cRLReasons`.
    static let reasonCodeOID: ASN1ObjectIdentifier = [2, 5, 29, 21]
    /// `id-ce-holdInstructionCode`.
    static let holdInstructionCodeOID: ASN1ObjectIdentifier = [2, 5, 29, 23]
    /// `id-holdinstruction-reject`: reject the certificate while it is on hold.
    static let holdInstructionRejectOID: ASN1ObjectIdentifier = [1, 2, 840, 10040, 2, 3]

    /// A signed CRL, DER.
    ///
    /// Entries carry a `reasonCode` extension (absent for `unspecified`, as RFC 5280 recommends) and, when on
    /// hold, the hold instruction `reject`. The CRL carries the authority key identifier and the CRL number.
    ///
    /// - Parameters:
    ///   - ca: the issuer; its key in the token signs.
    ///   - entries: the revoked and suspended certificates.
    ///   - number: the CRL number (monotonic).
    ///   - thisUpdate: issue time (truncated to whole seconds).
    ///   - nextUpdate: when the next CRL is due at the latest.
    /// - Throws: `PKCS11Error` from the token, ASN.1 errors.
    public static func build(ca: CertificateAuthority, entries: [CRLEntry], number: Int64, thisUpdate: Date, nextUpdate: Date) async throws -> [UInt8] {
        let algorithm = ca.privateKey.defaultSignatureAlgorithm
        var tbs = DER.Serializer()
        try tbs.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(1)  // v2
            try DERCoding.serializeAlgorithmIdentifier(algorithm, into: &coder)
            try coder.serialize(ca.certificate.subject)
            try DERCoding.serializeTime(thisUpdate, into: &coder)
            try DERCoding.serializeTime(nextUpdate, into: &coder)
            if !entries.isEmpty {
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    for entry in entries.sorted(by: { $0.serialNumber.bytes.lexicographicallyPrecedes($1.serialNumber.bytes) }) {
                        try self.serialize(entry, into: &coder)
                    }
                }
            }
            try coder.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)) { coder in
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    let aki = try AuthorityKeyIdentifier(keyIdentifier: ca.keyIdentifier[...]).makeCertificateExtension()
                    try DERCoding.serializeExtension(oid: aki.oid, critical: false, value: Array(aki.value), into: &coder)
                    var crlNumber = DER.Serializer()
                    try crlNumber.serialize(Int(number))
                    try DERCoding.serializeExtension(oid: self.crlNumberOID, critical: false, value: crlNumber.serializedBytes, into: &coder)
                }
            }
        }
        let tbsBytes = tbs.serializedBytes
        let signature = try await ca.privateKey.signAsynchronously(bytes: tbsBytes, signatureAlgorithm: algorithm)
        var crl = DER.Serializer()
        try crl.appendConstructedNode(identifier: .sequence) { coder in
            coder.serializeRawBytes(tbsBytes)
            try DERCoding.serializeAlgorithmIdentifier(algorithm, into: &coder)
            try coder.serialize(ASN1BitString(bytes: signature.rawRepresentation[...]))
        }
        return crl.serializedBytes
    }

    private static func serialize(_ entry: CRLEntry, into coder: inout DER.Serializer) throws {
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(entry.serialNumber.bytes)
            try DERCoding.serializeTime(entry.date, into: &coder)
            var extensions: [(ASN1ObjectIdentifier, [UInt8])] = []
            if entry.reasonCode != 0 {
                extensions.append((self.reasonCodeOID, try DERCoding.enumerated(entry.reasonCode)))
            }
            if entry.status == .onHold {
                var hold = DER.Serializer()
                try hold.serialize(self.holdInstructionRejectOID)
                extensions.append((self.holdInstructionCodeOID, hold.serializedBytes))
            }
            if !extensions.isEmpty {
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    for (oid, value) in extensions {
                        try DERCoding.serializeExtension(oid: oid, critical: false, value: value, into: &coder)
                    }
                }
            }
        }
    }
}

/// DER pieces swift-certificates keeps internal: times, algorithm identifiers, extensions.
enum DERCoding {
    /// `Time ::= CHOICE { utcTime UTCTime, generalTime GeneralizedTime }`: UTCTime through 2049, as RFC 5280 asks.
    static func serializeTime(_ date: Date, into coder: inout DER.Serializer) throws {
        let c = self.components(date)
        if c.year < 2050 {
            try coder.serialize(try UTCTime(year: c.year, month: c.month, day: c.day, hours: c.hour, minutes: c.minute, seconds: c.second))
        } else {
            try coder.serialize(try self.generalizedTime(date))
        }
    }

    /// `date` as a GeneralizedTime in whole seconds (OCSP uses GeneralizedTime only).
    static func generalizedTime(_ date: Date) throws -> GeneralizedTime {
        let c = self.components(date)
        return try GeneralizedTime(year: c.year, month: c.month, day: c.day, hours: c.hour, minutes: c.minute, seconds: c.second, fractionalSeconds: 0)
    }

    private static func components(_ date: Date) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: CertificateAuthority.wholeSeconds(date))
        return (c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    /// The AlgorithmIdentifier of a signature algorithm the CA key can produce (ECDSA without parameters, RSA
    /// PKCS#1 v1.5 with NULL parameters).
    static func serializeAlgorithmIdentifier(_ algorithm: Certificate.SignatureAlgorithm, into coder: inout DER.Serializer) throws {
        let oid: ASN1ObjectIdentifier
        let nullParameters: Bool
        switch algorithm {
        case .ecdsaWithSHA256: (oid, nullParameters) = ([1, 2, 840, 10045, 4, 3, 2], false)
        case .ecdsaWithSHA384: (oid, nullParameters) = ([1, 2, 840, 10045, 4, 3, 3], false)
        case .ecdsaWithSHA512: (oid, nullParameters) = ([1, 2, 840, 10045, 4, 3, 4], false)
        case .sha256WithRSAEncryption: (oid, nullParameters) = ([1, 2, 840, 113549, 1, 1, 11], true)
        case .sha384WithRSAEncryption: (oid, nullParameters) = ([1, 2, 840, 113549, 1, 1, 12], true)
        case .sha512WithRSAEncryption: (oid, nullParameters) = ([1, 2, 840, 113549, 1, 1, 13], true)
        default:
            throw CertificateError.unsupportedSignatureAlgorithm(reason: "cannot encode \(algorithm)")
        }
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(oid)
            if nullParameters { try coder.serialize(ASN1Null()) }
        }
    }

    /// `Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }`.
    static func serializeExtension(oid: ASN1ObjectIdentifier, critical: Bool, value: [UInt8], into coder: inout DER.Serializer) throws {
        try coder.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(oid)
            if critical { try coder.serialize(true) }
            try coder.serialize(ASN1OctetString(contentBytes: value[...]))
        }
    }

    /// An ENUMERATED, DER, for the small values CRL reasons and OCSP statuses use (0 to 127).
    static func enumerated(_ value: Int) throws -> [UInt8] {
        guard (0...127).contains(value) else { throw ASN1Error.invalidASN1Object(reason: "ENUMERATED \(value) out of range") }
        return [0x0A, 0x01, UInt8(value)]
    }

}
