import SigilloDomain
import SwiftASN1
import X509

/// The qualified certificate statements extension (RFC 3739 §3.2.6) with the statements of ETSI EN 319 412-5
/// (and RFC 3739's semantics information, which EN 319 412-1 uses for the identifier types of the subject).
///
/// ```
/// QCStatements ::= SEQUENCE OF QCStatement
/// QCStatement ::= SEQUENCE { statementId OBJECT IDENTIFIER, statementInfo ANY DEFINED BY statementId OPTIONAL }
/// ```
public struct QCStatements: CertificateExtensionConvertible, DERImplicitlyTaggable, Hashable, Sendable {
    /// `id-pe-qcStatements`.
    public static let oid: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 1, 3]

    public static var defaultIdentifier: ASN1Identifier { .sequence }

    /// One statement.
    public enum Statement: DERImplicitlyTaggable, Hashable, Sendable {
        /// `esi4-qcStatement-1`: the certificate is an EU qualified certificate.
        case compliance
        /// `esi4-qcStatement-4`: the private key is in a qualified signature creation device.
        case sscd
        /// `esi4-qcStatement-6`: the kinds of qualified certificate (`QcType.eSign`, ...).
        case type([ASN1ObjectIdentifier])
        /// `esi4-qcStatement-5`: where the PKI disclosure statements are, one per language.
        case pds([PDSLocation])
        /// `esi4-qcStatement-3`: years the registration information is kept after the certificate expires.
        case retentionPeriod(Int)
        /// `id-qcs-pkixQCSyntax-v2`: what the subject's identifiers mean (EN 319 412-1 §5.1).
        case semantics(ASN1ObjectIdentifier)
        /// Any other statement, with its info if it has one.
        case other(ASN1ObjectIdentifier, ASN1Any?)

        public static var defaultIdentifier: ASN1Identifier { .sequence }

        public init(derEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
            self = try DER.sequence(rootNode, identifier: identifier) { nodes in
                let oid = try ASN1ObjectIdentifier(derEncoded: &nodes)
                let info = nodes.next()
                switch (oid, info) {
                case (QCStatements.complianceOID, nil): return .compliance
                case (QCStatements.sscdOID, nil): return .sscd
                case (QCStatements.typeOID, let info?):
                    return .type(try DER.sequence(of: ASN1ObjectIdentifier.self, identifier: .sequence, rootNode: info))
                case (QCStatements.pdsOID, let info?):
                    return .pds(try DER.sequence(of: PDSLocation.self, identifier: .sequence, rootNode: info))
                case (QCStatements.retentionPeriodOID, let info?):
                    return .retentionPeriod(try Int(derEncoded: info))
                case (QCStatements.pkixQCSyntaxV2OID, let info?):
                    let semantics: ASN1ObjectIdentifier? = try DER.sequence(info, identifier: .sequence) { fields in
                        guard let first = fields.next(), first.identifier == .objectIdentifier else { return nil }
                        _ = fields.next()  // nameRegistrationAuthorities
                        return try ASN1ObjectIdentifier(derEncoded: first)
                    }
                    if let semantics { return .semantics(semantics) }
                    return .other(oid, ASN1Any(derEncoded: info))
                default:
                    return .other(oid, info.map { ASN1Any(derEncoded: $0) })
                }
            }
        }

        public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
            try coder.appendConstructedNode(identifier: identifier) { coder in
                switch self {
                case .compliance:
                    try coder.serialize(QCStatements.complianceOID)
                case .sscd:
                    try coder.serialize(QCStatements.sscdOID)
                case .type(let types):
                    try coder.serialize(QCStatements.typeOID)
                    try coder.serializeSequenceOf(types)
                case .pds(let locations):
                    try coder.serialize(QCStatements.pdsOID)
                    try coder.serializeSequenceOf(locations)
                case .retentionPeriod(let years):
                    try coder.serialize(QCStatements.retentionPeriodOID)
                    try coder.serialize(years)
                case .semantics(let semantics):
                    try coder.serialize(QCStatements.pkixQCSyntaxV2OID)
                    try coder.appendConstructedNode(identifier: .sequence) { coder in
                        try coder.serialize(semantics)
                    }
                case .other(let oid, let info):
                    try coder.serialize(oid)
                    if let info { try coder.serialize(info) }
                }
            }
        }
    }

    /// A PKI disclosure statement's URL (https) and its language (ISO 639-1, two letters).
    ///
    /// `PdsLocation ::= SEQUENCE { url IA5String, language PrintableString (SIZE(2)) }`
    public struct PDSLocation: DERImplicitlyTaggable, Hashable, Sendable, Codable {
        public static var defaultIdentifier: ASN1Identifier { .sequence }

        public var url: String
        public var language: String

        public init(url: String, language: String) {
            self.url = url
            self.language = language
        }

        public init(derEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
            self = try DER.sequence(rootNode, identifier: identifier) { nodes in
                let url = try ASN1IA5String(derEncoded: &nodes)
                let language = try ASN1PrintableString(derEncoded: &nodes)
                return PDSLocation(url: String(url), language: String(language))
            }
        }

        public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
            try coder.appendConstructedNode(identifier: identifier) { coder in
                try coder.serialize(try ASN1IA5String(self.url))
                try coder.serialize(try ASN1PrintableString(self.language))
            }
        }
    }

    /// `id-etsi-qcs-QcCompliance` (0.4.0.1862.1.1).
    public static let complianceOID: ASN1ObjectIdentifier = [0, 4, 0, 1862, 1, 1]
    /// `id-etsi-qcs-QcRetentionPeriod` (0.4.0.1862.1.3).
    public static let retentionPeriodOID: ASN1ObjectIdentifier = [0, 4, 0, 1862, 1, 3]
    /// `id-etsi-qcs-QcSSCD` (0.4.0.1862.1.4).
    public static let sscdOID: ASN1ObjectIdentifier = [0, 4, 0, 1862, 1, 4]
    /// `id-etsi-qcs-QcPDS` (0.4.0.1862.1.5).
    public static let pdsOID: ASN1ObjectIdentifier = [0, 4, 0, 1862, 1, 5]
    /// `id-etsi-qcs-QcType` (0.4.0.1862.1.6).
    public static let typeOID: ASN1ObjectIdentifier = [0, 4, 0, 1862, 1, 6]
    /// `id-etsi-qct-esign`: a certificate for electronic signatures (0.4.0.1862.1.6.1).
    public static let typeESign: ASN1ObjectIdentifier = [0, 4, 0, 1862, 1, 6, 1]
    /// `id-etsi-qct-eseal` (0.4.0.1862.1.6.2).
    public static let typeESeal: ASN1ObjectIdentifier = [0, 4, 0, 1862, 1, 6, 2]
    /// `id-qcs-pkixQCSyntax-v2` (RFC 3739).
    public static let pkixQCSyntaxV2OID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 11, 2]
    /// `id-etsi-qcs-semanticsId-Natural` (EN 319 412-1 §5.1.3): the subject's serialNumber is a natural person's
    /// identifier `XXYY-…` (type, country, identifier, as `TINIT-<codice fiscale>`).
    public static let semanticsNaturalPerson: ASN1ObjectIdentifier = [0, 4, 0, 194121, 1, 1]
    /// `id-etsi-qcs-semanticsId-Legal` (EN 319 412-1 §5.1.4): organizationIdentifier `VATIT-…` and the like.
    public static let semanticsLegalPerson: ASN1ObjectIdentifier = [0, 4, 0, 194121, 1, 2]

    /// The statements, in order.
    public var statements: [Statement]

    public init(_ statements: [Statement]) {
        self.statements = statements
    }

    /// The statements read from `ext`.
    ///
    /// - Throws: `CertificateError.incorrectOIDForExtension` for another extension; `ASN1Error` for bad DER.
    public init(_ ext: Certificate.Extension) throws {
        guard ext.oid == Self.oid else {
            throw CertificateError.incorrectOIDForExtension(reason: "expected \(Self.oid), got \(ext.oid)")
        }
        self = try QCStatements(derEncoded: ext.value)
    }

    public init(derEncoded rootNode: ASN1Node, withIdentifier identifier: ASN1Identifier) throws {
        self.statements = try DER.sequence(of: Statement.self, identifier: identifier, rootNode: rootNode)
    }

    public func serialize(into coder: inout DER.Serializer, withIdentifier identifier: ASN1Identifier) throws {
        try coder.serializeSequenceOf(self.statements, identifier: identifier)
    }

    public func makeCertificateExtension() throws -> Certificate.Extension {
        guard !self.statements.isEmpty else {
            throw SigilloError(.invalidRequest, "qcStatements needs at least one statement")
        }
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return Certificate.Extension(oid: Self.oid, critical: false, value: serializer.serializedBytes[...])
    }
}
