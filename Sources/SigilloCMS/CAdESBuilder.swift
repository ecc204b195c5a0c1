import Crypto
import Foundation
import PKCS11
import SwiftASN1

/// Builds detached CAdES baseline signatures (B-B, B-T, B-LT): CMS `SignedData` (RFC 5652) with the signed
/// attributes of ETSI EN 319 122-1 — content-type, message-digest, signing-time and ESS signing-certificate-v2
/// (RFC 5035) — and, from B-T on, the signature-time-stamp and the validation data.
///
/// The private key is elsewhere (a remote signing service): the builder computes the digest of the DER
/// `SET OF Attribute`, somebody signs that digest, and the builder wraps the signature into a `.p7s`.
/// The two halves are separate (`prepare(contentDigest:signingTime:)`, then `Prepared.finish(signature:)`),
/// so that a client can collect every file's digest to sign, authorize and sign them in one batch, and
/// finish each file afterwards.
///
/// ```swift
/// let builder = try CAdESBuilder(signerCertificate: leafDER, chain: [caDER], digestAlgorithm: .sha256)
/// let prepared = try builder.prepare(contentDigest: fileDigest, signingTime: Date())
/// let signature = try await remote.signHash(prepared.digestToSign)
/// let p7s = try prepared.finish(signature: signature)
/// ```
///
/// B-T and B-LT (ETSI EN 319 122-1 §5.3, §5.5): time-stamp `prepared.signatureValue(signature:)`, then
/// `prepared.finish(signature:timeStampToken:validation:)` with the token and, for B-LT, the revocation data.
public struct CAdESBuilder: Hashable, Sendable {
    /// The signer's certificate.
    public let signer: SignerCertificate
    /// Every certificate put in the `certificates` field: the signer's first, then the chain, without duplicates.
    public let certificates: [[UInt8]]
    /// The hash of the content, of the signed attributes, and of the signature algorithm.
    public let digestAlgorithm: HashAlgorithm

    /// A builder for one signer.
    ///
    /// - Parameters:
    ///   - signerCertificate: DER of the signer's certificate (EC or RSA key).
    ///   - chain: DER of the other certificates to embed (intermediates, root); the signer's certificate
    ///     may appear in it (CSC `certificates: "chain"` starts with it) and is not repeated.
    ///   - digestAlgorithm: SHA-256, SHA-384 or SHA-512.
    /// - Throws: `CMSError` when a certificate cannot be parsed.
    public init(signerCertificate: [UInt8], chain: [[UInt8]] = [], digestAlgorithm: HashAlgorithm = .sha256) throws {
        self.signer = try SignerCertificate(der: signerCertificate)
        var certificates = [signerCertificate]
        for certificate in chain where !certificates.contains(certificate) {
            _ = try DER.parse(certificate)
            certificates.append(certificate)
        }
        self.certificates = certificates
        self.digestAlgorithm = digestAlgorithm
    }

    /// The dotted OID of the signature algorithm to ask a CSC service for (`signAlgo` of `signatures/signHash`):
    /// ecdsa-with-SHA256/384/512 or sha256/384/512WithRSAEncryption (RSA PKCS#1 v1.5).
    public var signatureAlgorithmOID: String {
        switch self.signer.keyType {
        case .ec: return CMSOID.ecdsa(self.digestAlgorithm).description
        case .rsa: return CMSOID.rsaPKCS1(self.digestAlgorithm).description
        }
    }

    /// The dotted OID of `digestAlgorithm` (`hashAlgo` of `signatures/signHash`).
    public var digestAlgorithmOID: String { CMSOID.digest(self.digestAlgorithm).description }

    /// Computes the signed attributes for one content digest and the digest to be signed.
    ///
    /// - Parameters:
    ///   - contentDigest: the digest of the (detached) content with `digestAlgorithm`.
    ///   - signingTime: the claimed signing time; whole seconds are kept.
    /// - Returns: the DER signed attributes, their digest, and what `finish(signature:)` needs.
    /// - Throws: `CMSError` when the digest has the wrong length.
    public func prepare(contentDigest: [UInt8], signingTime: Date = Date()) throws -> Prepared {
        guard contentDigest.count == self.digestAlgorithm.digestLength else {
            throw CMSError("a \(self.digestAlgorithm.rawValue) digest is \(self.digestAlgorithm.digestLength) bytes, not \(contentDigest.count)"
            )
        }
        let attributes = try self.signedAttributes(contentDigest: contentDigest, signingTime: signingTime)
        let digest = self.digestAlgorithm.digest(attributes)
        return Prepared(builder: self, signedAttributesDER: attributes, digestToSign: digest)
    }

    /// Prepares, signs through `sign` and finishes in one call.
    ///
    /// - Parameter sign: signs the digest of the DER signed attributes (not the attributes themselves):
    ///   an ECDSA signature (DER `ECDSA-Sig-Value` or raw r‖s) or an RSA PKCS#1 v1.5 signature.
    /// - Returns: the DER `.p7s`.
    public func sign(
        contentDigest: [UInt8],
        signingTime: Date = Date(),
        sign: ([UInt8]) async throws -> [UInt8]
    ) async throws -> [UInt8] {
        let prepared = try self.prepare(contentDigest: contentDigest, signingTime: signingTime)
        let signature = try await sign(prepared.digestToSign)
        return try prepared.finish(signature: signature)
    }

    /// One signature in progress: the signed attributes are fixed, the signature is still to come.
    public struct Prepared: Hashable, Sendable {
        public let builder: CAdESBuilder
        /// DER of the signed attributes as a `SET OF Attribute` (tag 0x31), the bytes the signature covers.
        public let signedAttributesDER: [UInt8]
        /// The digest of `signedAttributesDER` with the builder's digest algorithm: what the key signs.
        public let digestToSign: [UInt8]

        /// The exact bytes of `SignerInfo.signature` for `signature` as a signing service returns it: an ECDSA
        /// signature as DER `ECDSA-Sig-Value` (raw r‖s converted), an RSA signature unchanged. A CAdES-B-T
        /// signature-time-stamp is over these bytes (ETSI EN 319 122-1 §5.3: the value of the `signature` field).
        ///
        /// - Throws: `CMSError` when the signature is empty or malformed.
        public func signatureValue(signature: [UInt8]) throws -> [UInt8] {
            guard !signature.isEmpty else { throw CMSError("empty signature") }
            return self.builder.signer.keyType == .ec ? try ECDSASignature.der(signature) : signature
        }

        /// Wraps the signature into a DER `ContentInfo` holding the detached `SignedData` (CAdES-B-B).
        ///
        /// - Throws: `CMSError` when the signature is empty or malformed.
        public func finish(signature: [UInt8]) throws -> [UInt8] {
            try self.finish(signature: signature, timeStampToken: nil, validation: nil)
        }

        /// Wraps the signature into a detached `SignedData` at the level the arguments give: B-B without a token,
        /// B-T with the signature-time-stamp `timeStampToken` as the unsigned attribute `id-aa-signatureTimeStampToken`,
        /// B-LT when `validation` adds the revocation data (in `crls`) and further certificates.
        ///
        /// - Parameters:
        ///   - signature: the signature as the service returned it (see `signatureValue(signature:)`).
        ///   - timeStampToken: a DER RFC 3161 `TimeStampToken` whose message imprint is a digest of
        ///     `signatureValue(signature:)`; checked here.
        ///   - validation: certificates and revocation data to embed.
        /// - Throws: `CMSError` when the signature is malformed or the token is not over this signature value.
        public func finish(signature: [UInt8], timeStampToken: [UInt8]?, validation: ValidationData? = nil) throws -> [UInt8] {
            let value = try self.signatureValue(signature: signature)
            var unsigned: [[UInt8]] = []
            if let timeStampToken {
                let info = try TimeStampTokenInfo(token: timeStampToken)
                guard info.hashedMessage == info.hashAlgorithm.digest(value) else {
                    throw CMSError("the time-stamp token is not over this signature value (message imprint mismatch)")
                }
                unsigned.append(try CAdESBuilder.attribute(CMSOID.signatureTimeStampToken) { $0.serializeRawBytes(timeStampToken) })
            }
            return try self.builder.signedData(
                signedAttributesDER: self.signedAttributesDER, signature: value, unsignedAttributes: unsigned,
                validation: validation ?? ValidationData())
        }
    }
}

extension CAdESBuilder {
    /// `SET OF Attribute`, DER (sorted), with the universal SET tag.
    func signedAttributes(contentDigest: [UInt8], signingTime: Date) throws -> [UInt8] {
        let attributes: [[UInt8]] = try [
            Self.attribute(CMSOID.contentType) { try $0.serialize(CMSOID.data) },
            Self.attribute(CMSOID.messageDigest) { try $0.serialize(ASN1OctetString(contentBytes: contentDigest[...])) },
            Self.attribute(CMSOID.signingTime) { try Self.serializeTime(signingTime, into: &$0) },
            Self.attribute(CMSOID.signingCertificateV2) { try self.serializeSigningCertificateV2(into: &$0) },
        ]
        var serializer = DER.Serializer()
        try serializer.serializeSetOf(try attributes.map { ASN1Any(derEncoded: try DER.parse($0)) })
        return serializer.serializedBytes
    }

    /// `Attribute ::= SEQUENCE { attrType OBJECT IDENTIFIER, attrValues SET OF AttributeValue }` with one value.
    static func attribute(_ type: ASN1ObjectIdentifier, value: (inout DER.Serializer) throws -> Void) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { serializer in
            try serializer.serialize(type)
            try serializer.appendConstructedNode(identifier: .set) { serializer in
                try value(&serializer)
            }
        }
        return serializer.serializedBytes
    }

    /// `Time`: UTCTime from 1950 to 2049, GeneralizedTime otherwise (RFC 5652 §11.3); whole seconds, UTC.
    static func serializeTime(_ date: Date, into serializer: inout DER.Serializer) throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let (year, month, day) = (c.year!, c.month!, c.day!)
        let (hour, minute, second) = (c.hour!, c.minute!, c.second!)
        if (1950...2049).contains(year) {
            try serializer.serialize(UTCTime(year: year, month: month, day: day, hours: hour, minutes: minute, seconds: second))
        } else {
            try serializer.serialize(
                GeneralizedTime(year: year, month: month, day: day, hours: hour, minutes: minute, seconds: second, fractionalSeconds: 0)
            )
        }
    }

    /// ```
    /// SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies ... OPTIONAL }
    /// ESSCertIDv2 ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier DEFAULT {id-sha256},
    ///                            certHash OCTET STRING, issuerSerial IssuerSerial OPTIONAL }
    /// IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber CertificateSerialNumber }
    /// ```
    /// The hash is SHA-256, so `hashAlgorithm` is omitted (DER omits DEFAULT values).
    func serializeSigningCertificateV2(into serializer: inout DER.Serializer) throws {
        let issuer = try ASN1Any(derEncoded: DER.parse(self.signer.issuerDER))
        let serial = try ASN1Any(derEncoded: DER.parse(self.signer.serialNumberDER))
        let certHash = self.signer.sha256
        try serializer.appendConstructedNode(identifier: .sequence) { serializer in
            try serializer.appendConstructedNode(identifier: .sequence) { serializer in
                try serializer.appendConstructedNode(identifier: .sequence) { serializer in
                    try serializer.serialize(ASN1OctetString(contentBytes: certHash[...]))
                    try serializer.appendConstructedNode(identifier: .sequence) { serializer in
                        // GeneralNames ::= SEQUENCE OF GeneralName; directoryName [4] EXPLICIT Name
                        try serializer.appendConstructedNode(identifier: .sequence) { serializer in
                            try serializer.appendConstructedNode(identifier: ASN1Identifier(tagWithNumber: 4, tagClass: .contextSpecific)) {
                                try $0.serialize(issuer)
                            }
                        }
                        try serializer.serialize(serial)
                    }
                }
            }
        }
    }

    /// `AlgorithmIdentifier` of the digest, parameters absent (RFC 5754 §2).
    func serializeDigestAlgorithm(into serializer: inout DER.Serializer) throws {
        try serializer.appendConstructedNode(identifier: .sequence) { serializer in
            try serializer.serialize(CMSOID.digest(self.digestAlgorithm))
        }
    }

    /// `AlgorithmIdentifier` of the signature: ecdsa-with-SHA* without parameters (RFC 5754 §3.3), or
    /// rsaEncryption with NULL parameters (RFC 3370 §3.2), which every CMS verifier accepts for PKCS#1 v1.5.
    func serializeSignatureAlgorithm(into serializer: inout DER.Serializer) throws {
        try serializer.appendConstructedNode(identifier: .sequence) { serializer in
            switch self.signer.keyType {
            case .ec:
                try serializer.serialize(CMSOID.ecdsa(self.digestAlgorithm))
            case .rsa:
                try serializer.serialize(CMSOID.rsaEncryption)
                try serializer.serialize(ASN1Null())
            }
        }
    }

    /// `ContentInfo { id-signedData, [0] EXPLICIT SignedData }` with detached content and one `SignerInfo`.
    ///
    /// - Parameters:
    ///   - unsignedAttributes: DER `Attribute`s for `unsignedAttrs` (none: the field is absent).
    ///   - validation: more certificates for `certificates`, and the revocation data for `crls` (none: absent).
    func signedData(signedAttributesDER: [UInt8], signature: [UInt8], unsignedAttributes: [[UInt8]] = [],
                    validation: ValidationData = ValidationData()) throws -> [UInt8] {
        var certificateDERs = self.certificates
        for certificate in validation.certificates where !certificateDERs.contains(certificate) {
            certificateDERs.append(certificate)
        }
        let certificates = try certificateDERs.map { ASN1Any(derEncoded: try DER.parse($0)) }
        // DER SET OF: the encodings in ascending order (X.690 §11.6), written as they are.
        let revocation = try validation.revocation.map { try $0.serialized() }.sorted { $0.lexicographicallyPrecedes($1) }
        let unsigned = unsignedAttributes.sorted { $0.lexicographicallyPrecedes($1) }
        // RFC 5652 §5.1: version 5 when an `other` revocation format is present; otherwise 1 (id-data, no attribute
        // certificates, v1 SignerInfo).
        let version = validation.revocation.contains(where: \.isOtherFormat) ? 5 : 1
        let one = ASN1Identifier(tagWithNumber: 1, tagClass: .contextSpecific)
        let attributes = try DER.parse(signedAttributesDER)
        guard attributes.identifier == .set, case .constructed(let attributeNodes) = attributes.content else {
            throw CMSError("signed attributes are not a DER SET")
        }
        let issuer = try ASN1Any(derEncoded: DER.parse(self.signer.issuerDER))
        let serial = try ASN1Any(derEncoded: DER.parse(self.signer.serialNumberDER))
        let zero = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)

        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { serializer in
            try serializer.serialize(CMSOID.signedData)
            try serializer.appendConstructedNode(identifier: zero) { serializer in
                // SignedData
                try serializer.appendConstructedNode(identifier: .sequence) { serializer in
                    try serializer.serialize(version)
                    try serializer.appendConstructedNode(identifier: .set) { serializer in
                        try self.serializeDigestAlgorithm(into: &serializer)
                    }
                    // EncapsulatedContentInfo without eContent: detached.
                    try serializer.appendConstructedNode(identifier: .sequence) { serializer in
                        try serializer.serialize(CMSOID.data)
                    }
                    // certificates [0] IMPLICIT CertificateSet
                    try serializer.serializeSetOf(certificates, identifier: zero)
                    // crls [1] IMPLICIT RevocationInfoChoices
                    if !revocation.isEmpty {
                        serializer.appendConstructedNode(identifier: one) { serializer in
                            for choice in revocation { serializer.serializeRawBytes(choice) }
                        }
                    }
                    // signerInfos SET OF SignerInfo
                    try serializer.appendConstructedNode(identifier: .set) { serializer in
                        try serializer.appendConstructedNode(identifier: .sequence) { serializer in
                            try serializer.serialize(1)  // v1: issuerAndSerialNumber
                            try serializer.appendConstructedNode(identifier: .sequence) { serializer in
                                try serializer.serialize(issuer)
                                try serializer.serialize(serial)
                            }
                            try self.serializeDigestAlgorithm(into: &serializer)
                            // signedAttrs [0] IMPLICIT SET OF Attribute: same content, context tag.
                            try serializer.appendConstructedNode(identifier: zero) { serializer in
                                for node in attributeNodes {
                                    try serializer.serialize(ASN1Any(derEncoded: node))
                                }
                            }
                            try self.serializeSignatureAlgorithm(into: &serializer)
                            try serializer.serialize(ASN1OctetString(contentBytes: signature[...]))
                            // unsignedAttrs [1] IMPLICIT SET OF Attribute
                            if !unsigned.isEmpty {
                                serializer.appendConstructedNode(identifier: one) { serializer in
                                    for attribute in unsigned { serializer.serializeRawBytes(attribute) }
                                }
                            }
                        }
                    }
                }
            }
        }
        return serializer.serializedBytes
    }
}

extension HashAlgorithm {
    /// The digest of `data` (SHA-256/384/512).
    func digest(_ data: [UInt8]) -> [UInt8] {
        switch self {
        case .sha256: return Array(SHA256.hash(data: data))
        case .sha384: return Array(SHA384.hash(data: data))
        case .sha512: return Array(SHA512.hash(data: data))
        }
    }
}
