import Foundation
import SigilloDomain
import SigilloPKI
import SwiftASN1

/// The provider's choices in the qualified certificate profile of holder certificates (configuration field
/// `qualifiedProfile`; `QualifiedCertificateProfile` says what each becomes in a certificate).
///
/// ```json
/// "qualifiedProfile": {
///   "policyOID": "1.3.6.1.4.1.99999.1.2.3",
///   "cpsURL": "https://www.example.it/cps.pdf",
///   "pds": [{"url": "https://www.example.it/pds-en.pdf", "language": "en"},
///           {"url": "https://www.example.it/pds-it.pdf", "language": "it"}],
///   "qscd": true, "agidPolicy": true, "retentionPeriodYears": 20,
///   "serviceName": {"en": "Example Qualified CA", "it": "Example CA qualificata"}
/// }
/// ```
public struct QualifiedProfileSettings: Codable, Sendable, Equatable {
    /// The provider's certificate policy OID (its CP/CPS). The default, `2.999.19.1`, is an example OID for
    /// development only.
    public var policyOID = "2.999.19.1"
    /// The CPS URL, written as the provider policy's qualifier; nil: none.
    public var cpsURL: String?
    /// The PKI disclosure statements (QcPDS), one per language, English among them; nil: development URLs under
    /// `pkiBaseURL` (`/pds/pds-en.pdf`, `/pds/pds-it.pdf`).
    public var pds: [QCStatements.PDSLocation]?
    /// The holder keys are in a QSCD (QcSSCD, QCP-n-qscd); false: QCP-n and no QcSSCD.
    public var qscd = true
    /// Adds AgID's `agIDcert` policy (1.3.76.16.6) for Italian qualified certificates.
    public var agidPolicy = true
    /// QcRetentionPeriod in years; nil: no such statement.
    public var retentionPeriodYears: Int?
    /// The trust service's name in the trusted-list entry, by language (`sigillo ca trusted-list`); nil: the CA
    /// certificate's common name, in English and Italian.
    public var serviceName: [String: String]?

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case policyOID, cpsURL, pds, qscd, agidPolicy, retentionPeriodYears, serviceName
    }

    /// Every field may be left out; an unknown one is refused, as in `ServerConfiguration`.
    public init(from decoder: any Decoder) throws {
        try ConfigurationError.refuseUnknownFields(decoder, known: CodingKeys.self, what: "qualifiedProfile field")
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.policyOID = try container.decodeIfPresent(String.self, forKey: .policyOID) ?? self.policyOID
        self.cpsURL = try container.decodeIfPresent(String.self, forKey: .cpsURL)
        self.pds = try container.decodeIfPresent([QCStatements.PDSLocation].self, forKey: .pds)
        self.qscd = try container.decodeIfPresent(Bool.self, forKey: .qscd) ?? self.qscd
        self.agidPolicy = try container.decodeIfPresent(Bool.self, forKey: .agidPolicy) ?? self.agidPolicy
        self.retentionPeriodYears = try container.decodeIfPresent(Int.self, forKey: .retentionPeriodYears)
        self.serviceName = try container.decodeIfPresent([String: String].self, forKey: .serviceName)
    }

    /// The profile holder certificates get, the PDS defaulting under `pkiBaseURL`.
    ///
    /// - Throws: `ConfigurationError` naming the field that is wrong.
    public func profile(pkiBaseURL: String) throws -> QualifiedCertificateProfile {
        let oid: ASN1ObjectIdentifier
        do {
            oid = try ASN1ObjectIdentifier(dotRepresentation: self.policyOID)
        } catch {
            throw ConfigurationError("qualifiedProfile.policyOID must be a dotted OID, got '\(self.policyOID)'")
        }
        do {
            let pds = self.pds ?? QualifiedCertificateProfile.development(pkiBaseURL: pkiBaseURL).pds
            return try QualifiedCertificateProfile(
                policyOID: oid, cpsURL: self.cpsURL, pds: pds, qscd: self.qscd, agidPolicy: self.agidPolicy,
                retentionPeriodYears: self.retentionPeriodYears)
        } catch let error as SigilloError {
            throw ConfigurationError("qualifiedProfile: \(error.message)")
        }
    }
}
