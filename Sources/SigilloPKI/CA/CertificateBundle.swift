import SwiftASN1
import X509

/// A "certs-only" CMS message (RFC 5652 SignedData with certificates and no signer, RFC 5280 §4.2.2.1): what a CA
/// issuers URL ending in `.p7c` serves, so that one fetch gives a validator the whole chain.
///
/// ```
/// ContentInfo ::= SEQUENCE { contentType id-signedData, content [0] EXPLICIT SignedData }
/// SignedData ::= SEQUENCE { version 1, digestAlgorithms SET {}, encapContentInfo SEQUENCE { id-data },
///                           certificates [0] IMPLICIT SET OF Certificate, signerInfos SET {} }
/// ```
public struct CertificateBundle: Sendable {
    /// `id-signedData`.
    static let signedDataOID: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 7, 2]
    /// `id-data`.
    static let dataOID: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 7, 1]

    /// The certificates, DER.
    public var certificates: [[UInt8]]

    public init(certificates: [[UInt8]]) {
        self.certificates = certificates
    }

    /// The message, DER (the certificates in DER SET OF order).
    public func derEncoded() throws -> [UInt8] {
        let tag0 = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { coder in
            try coder.serialize(Self.signedDataOID)
            try coder.appendConstructedNode(identifier: tag0) { coder in
                try coder.appendConstructedNode(identifier: .sequence) { coder in
                    try coder.serialize(1)
                    try coder.appendConstructedNode(identifier: .set) { _ in }
                    try coder.appendConstructedNode(identifier: .sequence) { coder in
                        try coder.serialize(Self.dataOID)
                    }
                    try coder.appendConstructedNode(identifier: tag0) { coder in
                        // DER orders a SET OF by the elements' encodings.
                        for certificate in self.certificates.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                            coder.serializeRawBytes(certificate)
                        }
                    }
                    try coder.appendConstructedNode(identifier: .set) { _ in }
                }
            }
        }
        return serializer.serializedBytes
    }
}
