import SwiftASN1
import X509

/// The CRL distribution points extension (RFC 5280 §4.2.1.13) with one full-name URI per point, which
/// swift-certificates does not model.
///
/// ```
/// CRLDistributionPoints ::= SEQUENCE SIZE (1..MAX) OF DistributionPoint
/// DistributionPoint ::= SEQUENCE { distributionPoint [0] DistributionPointName OPTIONAL, ... }
/// DistributionPointName ::= CHOICE { fullName [0] GeneralNames, ... }
/// ```
public struct CRLDistributionPoints: CertificateExtensionConvertible, Hashable, Sendable {
    /// `id-ce-cRLDistributionPoints`.
    public static let oid: ASN1ObjectIdentifier = [2, 5, 29, 31]

    /// The CRL URLs, one distribution point each.
    public var urls: [String]

    public init(urls: [String]) {
        self.urls = urls
    }

    /// The DER of the extension's value.
    public func derEncoded() throws -> [UInt8] {
        let tag0 = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { coder in
            for url in self.urls {
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    // [0] distributionPoint: explicit, since DistributionPointName is a CHOICE.
                    try coder.appendConstructedNode(identifier: tag0) { coder in
                        // [0] fullName: implicit GeneralNames.
                        try coder.appendConstructedNode(identifier: tag0) { coder in
                            try coder.serialize(GeneralName.uniformResourceIdentifier(url))
                        }
                    }
                }
            }
        }
        return serializer.serializedBytes
    }

    public func makeCertificateExtension() throws -> Certificate.Extension {
        Certificate.Extension(oid: Self.oid, critical: false, value: try self.derEncoded()[...])
    }
}
