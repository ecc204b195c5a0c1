import SwiftASN1

/// One item of `SignedData.crls` (RFC 5652 §10.2.1, RFC 5940):
///
/// ```
/// RevocationInfoChoice ::= CHOICE { crl CertificateList, other [1] IMPLICIT OtherRevocationInfoFormat }
/// OtherRevocationInfoFormat ::= SEQUENCE { otherRevInfoFormat OBJECT IDENTIFIER, otherRevInfo ANY }
/// ```
public enum RevocationInfoChoice: Hashable, Sendable {
    /// A DER `CertificateList` (an X.509 CRL).
    case crl([UInt8])
    /// A DER `OCSPResponse`, as `other` with `id-ri-ocsp-response` (RFC 5940 §4.1).
    case ocspResponse([UInt8])

    /// Whether it is written with the `other` alternative, which makes `SignedData` version 5 (RFC 5652 §5.1).
    public var isOtherFormat: Bool {
        if case .ocspResponse = self { return true }
        return false
    }

    /// The DER of the choice.
    public func serialized() throws -> [UInt8] {
        switch self {
        case .crl(let der):
            _ = try DERReading.parse(der, what: "CRL")
            return der
        case .ocspResponse(let der):
            _ = try DERReading.parse(der, what: "OCSP response")
            var serializer = DER.Serializer()
            try serializer.appendConstructedNode(identifier: DERReading.context(1)) { serializer in
                try serializer.serialize(CMSOID.ocspResponseRevocationInfo)
                serializer.serializeRawBytes(der)
            }
            return serializer.serializedBytes
        }
    }
}

/// What a CAdES-B-LT signature carries besides the signature so that it validates offline (ETSI EN 319 122-1 §5.5.1
/// via `SignedData`): certificates beyond the signer's chain the builder already has (an OCSP responder's, say) and
/// the revocation data of the signer's certificate.
public struct ValidationData: Hashable, Sendable {
    /// DER certificates to add to `certificates` (duplicates of the chain are skipped).
    public var certificates: [[UInt8]]
    /// CRLs and OCSP responses for `crls`.
    public var revocation: [RevocationInfoChoice]

    public init(certificates: [[UInt8]] = [], revocation: [RevocationInfoChoice] = []) {
        self.certificates = certificates
        self.revocation = revocation
    }
}
