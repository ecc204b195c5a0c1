import Foundation
import SigilloDomain
import SwiftASN1
import X509

/// What a provider chooses in the qualified certificate profile of its holders (ETSI EN 319 412-2 natural person,
/// EN 319 412-5 QC statements, AgID Determinazione 121/2019 for Italian qualified signature certificates).
///
/// Every holder certificate carries:
/// - certificatePolicies: the provider's policy (with its CPS URL, if any), ETSI's QCP-n-qscd
///   `0.4.0.194112.1.2` (QCP-n `0.4.0.194112.1.0` when the keys are not in a QSCD) and, when `agidPolicy`, AgID's
///   `1.3.76.16.6` (agIDcert: the certificate follows the AgID profile);
/// - qcStatements: the semantics identifier for a natural person (the `TINIT-` serialNumber), QcCompliance,
///   QcType esign, QcSSCD (when `qscd`), QcPDS (`pds`) and QcRetentionPeriod (when set);
/// - keyUsage nonRepudiation alone, critical (AgID: a qualified signature certificate's key is for signatures with
///   legal value only; EN 319 412-2 §4.3.2 type A).
public struct QualifiedCertificateProfile: Hashable, Sendable {
    /// The provider's certificate policy (its CP/CPS document's OID).
    public var policyOID: ASN1ObjectIdentifier
    /// The URL of the certification practice statement, written as the provider policy's CPS qualifier.
    public var cpsURL: String?
    /// The PKI disclosure statements (QcPDS); EN 319 412-5 wants one in English.
    public var pds: [QCStatements.PDSLocation]
    /// The holders' keys are in a QSCD (the token): QcSSCD and QCP-n-qscd.
    public var qscd: Bool
    /// AgID's `agIDcert` policy OID is added (Italian qualified certificates following Determinazione 121/2019).
    public var agidPolicy: Bool
    /// QcRetentionPeriod in years, or nil for none (eIDAS keeps registration data at least as long as needed).
    public var retentionPeriodYears: Int?

    /// ETSI EN 319 411-2 QCP-n: qualified certificate policy for natural persons.
    public static let qcpNatural: ASN1ObjectIdentifier = [0, 4, 0, 194112, 1, 0]
    /// ETSI EN 319 411-2 QCP-n-qscd: for natural persons, key in a QSCD.
    public static let qcpNaturalQSCD: ASN1ObjectIdentifier = [0, 4, 0, 194112, 1, 2]
    /// AgID `agIDcert` (1.3.76.16.6): the certificate follows the AgID profile for Italian qualified certificates.
    public static let agidCertificatePolicy: ASN1ObjectIdentifier = [1, 3, 76, 16, 6]
    /// The development policy OID: under `2.999`, the arc ITU-T X.660 keeps for examples, so it never names a
    /// real policy. A provider replaces it with its own.
    public static let developmentPolicyOID: ASN1ObjectIdentifier = [2, 999, 19, 1]

    /// A profile, checked (`validate()`).
    ///
    /// - Throws: `SigilloError.invalidRequest` naming what is wrong.
    public init(
        policyOID: ASN1ObjectIdentifier,
        cpsURL: String? = nil,
        pds: [QCStatements.PDSLocation],
        qscd: Bool = true,
        agidPolicy: Bool = true,
        retentionPeriodYears: Int? = nil
    ) throws {
        self.init(unchecked: policyOID, pds: pds)
        self.cpsURL = cpsURL
        self.qscd = qscd
        self.agidPolicy = agidPolicy
        self.retentionPeriodYears = retentionPeriodYears
        try self.validate()
    }

    private init(unchecked policyOID: ASN1ObjectIdentifier, pds: [QCStatements.PDSLocation]) {
        self.policyOID = policyOID
        self.cpsURL = nil
        self.pds = pds
        self.qscd = true
        self.agidPolicy = true
        self.retentionPeriodYears = nil
    }

    /// The development profile: the example policy OID, QSCD, agIDcert, and disclosure statements under `pkiBaseURL`
    /// (`/pds/pds-en.pdf`, `/pds/pds-it.pdf`). Not checked: a bad base URL makes bad PDS URLs, which `validate()` (and
    /// the server at start) refuses.
    public static func development(pkiBaseURL: String = "http://127.0.0.1:8080") -> QualifiedCertificateProfile {
        var base = pkiBaseURL
        while base.hasSuffix("/") { base.removeLast() }
        return QualifiedCertificateProfile(
            unchecked: Self.developmentPolicyOID,
            pds: [.init(url: "\(base)/pds/pds-en.pdf", language: "en"), .init(url: "\(base)/pds/pds-it.pdf", language: "it")])
    }

    /// Checks the profile: `policyOID` is not one of ETSI's or AgID's; URLs are absolute http(s) ASCII; languages
    /// are two lower-case letters, once each, English among them; the retention period is 1 to 100 years.
    ///
    /// - Throws: `SigilloError.invalidRequest` naming what is wrong.
    public func validate() throws {
        guard ![Self.qcpNatural, Self.qcpNaturalQSCD, Self.agidCertificatePolicy].contains(self.policyOID) else {
            throw SigilloError(.invalidRequest, "the provider's policy OID must be its own, not \(self.policyOID.dotted)")
        }
        guard !self.pds.isEmpty else { throw SigilloError(.invalidRequest, "at least one PKI disclosure statement (QcPDS) is needed") }
        for location in self.pds {
            try Self.checkURL(location.url, what: "PDS URL")
            guard location.language.count == 2, location.language.allSatisfy({ ("a"..."z").contains($0) }) else {
                throw SigilloError(.invalidRequest, "a PDS language must be two lower-case letters (ISO 639-1), got '\(location.language)'")
            }
        }
        guard Set(self.pds.map(\.language)).count == self.pds.count else {
            throw SigilloError(.invalidRequest, "one PDS per language")
        }
        guard self.pds.contains(where: { $0.language == "en" }) else {
            throw SigilloError(.invalidRequest, "EN 319 412-5 wants a PKI disclosure statement in English (language 'en')")
        }
        if let cpsURL = self.cpsURL { try Self.checkURL(cpsURL, what: "CPS URL") }
        if let years = self.retentionPeriodYears, !(1...100).contains(years) {
            throw SigilloError(.invalidRequest, "the retention period must be 1 to 100 years, got \(years)")
        }
    }

    /// The policies a holder certificate names, the provider's first.
    public var certificatePolicies: CertificatePolicies {
        var policies = [CertificatePolicies.PolicyInformation(self.policyOID, qualifiers: self.cpsURL.map { [.cps($0)] } ?? [])]
        policies.append(.init(self.qscd ? Self.qcpNaturalQSCD : Self.qcpNatural))
        if self.agidPolicy { policies.append(.init(Self.agidCertificatePolicy)) }
        return CertificatePolicies(policies)
    }

    /// The QC statements of a holder certificate.
    public var qcStatements: QCStatements {
        var statements: [QCStatements.Statement] = [.semantics(QCStatements.semanticsNaturalPerson), .compliance, .type([QCStatements.typeESign])]
        if self.qscd { statements.append(.sscd) }
        statements.append(.pds(self.pds))
        if let years = self.retentionPeriodYears { statements.append(.retentionPeriod(years)) }
        return QCStatements(statements)
    }

    static func checkURL(_ url: String, what: String) throws {
        guard url.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 }), let parsed = URL(string: url),
              let scheme = parsed.scheme?.lowercased(), ["http", "https"].contains(scheme), parsed.host != nil
        else {
            throw SigilloError(.invalidRequest, "the \(what) must be an absolute http or https URL, got '\(url)'")
        }
    }
}

extension ASN1ObjectIdentifier {
    /// The dotted form, right for every arc.
    ///
    /// swift-asn1's `description` splits the first subidentifier as `x = s / 40, y = s % 40`, which is wrong for
    /// arc 2 when the second arc is 40 or more (`2.999.19.1` prints as `26.39.19.1`).
    public var dotted: String {
        var components = self.oidComponents
        guard components.count >= 2 else { return self.description }
        let first = components[0] * 40 + components[1]
        if first >= 80 {
            components[0] = 2
            components[1] = first - 80
        }
        return components.map { String($0) }.joined(separator: ".")
    }
}
