import SigilloDomain
import SwiftASN1
import X509

/// The certificate policies extension (RFC 5280 §4.2.1.4), which swift-certificates does not model.
///
/// ```
/// certificatePolicies ::= SEQUENCE SIZE (1..MAX) OF PolicyInformation
/// PolicyInformation ::= SEQUENCE { policyIdentifier CertPolicyId,
///                                  policyQualifiers SEQUENCE SIZE (1..MAX) OF PolicyQualifierInfo OPTIONAL }
/// PolicyQualifierInfo ::= SEQUENCE { policyQualifierId PolicyQualifierId, qualifier ANY DEFINED BY policyQualifierId }
/// CPSuri ::= IA5String
/// UserNotice ::= SEQUENCE { noticeRef NoticeReference OPTIONAL, explicitText DisplayText OPTIONAL }
/// ```
public struct CertificatePolicies: CertificateExtensionConvertible, DERImplicitlyTaggable, Hashable, Sendable {
    /// `id-ce-certificatePolicies`.
    public static let oid: ASN1ObjectIdentifier = [2, 5, 29, 32]

    public static var defaultIdentifier: ASN1Identifier { .sequence }

    /// One policy and its qualifiers.
    public struct PolicyInformation: DERImplicitlyTaggable, Hashable, Sendable {
        public static var defaultIdentifier: ASN1Identifier { .sequence }

        public var identifier: ASN1ObjectIdentifier
        public var qualifiers: [Qualifier]

        public init(_ identifier: ASN1ObjectIdentifier, qualifiers: [Qualifier] = []) {
            self.identifier = identifier
            self.qualifiers = qualifiers
        }

        public init(derEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
            self = try DER.sequence(rootNode, identifier: identifier) { nodes in
                let oid = try ASN1ObjectIdentifier(derEncoded: &nodes)
                var qualifiers: [Qualifier] = []
                if let node = nodes.next() {
                    qualifiers = try DER.sequence(of: Qualifier.self, identifier: .sequence, rootNode: node)
                    guard !qualifiers.isEmpty else { throw ASN1Error.invalidASN1Object(reason: "empty policyQualifiers") }
                }
                return PolicyInformation(oid, qualifiers: qualifiers)
            }
        }

        public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
            try coder.appendConstructedNode(identifier: identifier) { coder in
                try coder.serialize(self.identifier)
                if !self.qualifiers.isEmpty {
                    try coder.serializeSequenceOf(self.qualifiers)
                }
            }
        }
    }

    /// A policy qualifier: where the practice statement is, or a notice for relying parties.
    public enum Qualifier: DERImplicitlyTaggable, Hashable, Sendable {
        /// `id-qt-cps`: the URL of the certification practice statement.
        case cps(String)
        /// `id-qt-unotice` with an `explicitText` (UTF8String, at most 200 characters) and no notice reference.
        case userNotice(String)
        /// Any other qualifier, kept as it is.
        case other(ASN1ObjectIdentifier, ASN1Any)

        /// `id-qt-cps`.
        public static let cpsOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 2, 1]
        /// `id-qt-unotice`.
        public static let userNoticeOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 2, 2]

        public static var defaultIdentifier: ASN1Identifier { .sequence }

        public init(derEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
            self = try DER.sequence(rootNode, identifier: identifier) { nodes in
                let oid = try ASN1ObjectIdentifier(derEncoded: &nodes)
                guard let value = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "policy qualifier without a value") }
                switch oid {
                case Self.cpsOID:
                    return .cps(String(try ASN1IA5String(derEncoded: value)))
                case Self.userNoticeOID:
                    let text: String? = try DER.sequence(value, identifier: .sequence) { notice in
                        var text: String?
                        while let node = notice.next() {
                            // noticeRef is a SEQUENCE; explicitText one of the DisplayText strings.
                            switch node.identifier {
                            case .sequence: continue
                            case .utf8String: text = String(try ASN1UTF8String(derEncoded: node))
                            case .ia5String: text = String(try ASN1IA5String(derEncoded: node))
                            default: return nil
                            }
                        }
                        return text
                    }
                    if let text { return .userNotice(text) }
                    return .other(oid, ASN1Any(derEncoded: value))
                default:
                    return .other(oid, ASN1Any(derEncoded: value))
                }
            }
        }

        public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
            try coder.appendConstructedNode(identifier: identifier) { coder in
                switch self {
                case .cps(let url):
                    try coder.serialize(Self.cpsOID)
                    try coder.serialize(try ASN1IA5String(url))
                case .userNotice(let text):
                    try coder.serialize(Self.userNoticeOID)
                    try coder.appendConstructedNode(identifier: .sequence) { coder in
                        try coder.serialize(ASN1UTF8String(text))
                    }
                case .other(let oid, let value):
                    try coder.serialize(oid)
                    try coder.serialize(value)
                }
            }
        }
    }

    /// The policies, in order; at least one.
    public var policies: [PolicyInformation]

    public init(_ policies: [PolicyInformation]) {
        self.policies = policies
    }

    /// The extension's policies, read from `ext`.
    ///
    /// - Throws: `CertificateError.incorrectOIDForExtension` for another extension; `ASN1Error` for bad DER.
    public init(_ ext: Certificate.Extension) throws {
        guard ext.oid == Self.oid else {
            throw CertificateError.incorrectOIDForExtension(reason: "expected \(Self.oid), got \(ext.oid)")
        }
        self = try CertificatePolicies(derEncoded: ext.value)
    }

    public init(derEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        let policies = try DER.sequence(of: PolicyInformation.self, identifier: identifier, rootNode: rootNode)
        guard !policies.isEmpty else { throw ASN1Error.invalidASN1Object(reason: "certificatePolicies is empty") }
        self.policies = policies
    }

    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.serializeSequenceOf(self.policies, identifier: identifier)
    }

    /// The policy identifiers, in order.
    public var identifiers: [ASN1ObjectIdentifier] { self.policies.map(\.identifier) }

    public func makeCertificateExtension() throws -> Certificate.Extension {
        guard !self.policies.isEmpty else {
            throw SigilloError(.invalidRequest, "certificatePolicies needs at least one policy")
        }
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return Certificate.Extension(oid: Self.oid, critical: false, value: serializer.serializedBytes[...])
    }
}
