import Foundation
import SigilloDomain
import SwiftASN1
import X509

/// The ETSI TS 119 612 `TSPService` element that lists the CA as a qualified trust service on a national trusted
/// list: what an operator hands to the supervisory body (AgID in Italy), which puts it under the provider's
/// `TSPServices` in its signed list.
///
/// The entry says: service type `CA/QC` (issues qualified certificates), status `granted` from
/// `statusStartingTime`, the CA's digital identity (certificate, subject name, key identifier), additional
/// service information `ForeSignatures`, and a qualification (TS 119 612 §5.5.9.2) for the certificates naming
/// the provider's policy: `QCStatement` (qualified), `QCForESig` (for electronic signatures),
/// `QCWithQSCD` and `QCQSCDManagedOnBehalf` (the key is in a QSCD the provider manages for the holder).
public struct TrustedListEntry: Sendable {
    /// The CA certificate the service is identified by.
    public var certificate: Certificate
    /// The service's name by language (ISO 639-1), e.g. `["en": ..., "it": ...]`.
    public var names: [String: String]
    /// The provider policy OID the qualification applies to (criteria: the certificate names it).
    public var policyOID: ASN1ObjectIdentifier
    /// The holder keys are in a QSCD managed on the holder's behalf (remote signing).
    public var qscdManagedOnBehalf: Bool
    /// When the status `granted` began.
    public var statusStartingTime: Date

    /// `http://uri.etsi.org/TrstSvc/Svctype/CA/QC`.
    public static let serviceTypeCAQC = "http://uri.etsi.org/TrstSvc/Svctype/CA/QC"
    /// `http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted`.
    public static let statusGranted = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted"
    /// The prefix of the service information extension URIs (qualifiers, additional information).
    public static let serviceInformationExtensionBase = "http://uri.etsi.org/TrstSvc/TrustedList/SvcInfoExt/"
    /// TS 119 612's namespace (`tsl:`).
    public static let namespaceTSL = "http://uri.etsi.org/02231/v2#"
    /// The qualifications extension's namespace (`ecc:`).
    public static let namespaceECC = "http://uri.etsi.org/TrstSvc/SvcInfoExt/eSigDir-1999-93-EC-TrustedList/#"
    /// XAdES's namespace (`xades:`, for `Identifier`).
    public static let namespaceXAdES = "http://uri.etsi.org/01903/v1.3.2#"

    public init(certificate: Certificate, names: [String: String], policyOID: ASN1ObjectIdentifier, qscdManagedOnBehalf: Bool = true,
                statusStartingTime: Date) throws {
        guard let constraints = try? certificate.extensions.basicConstraints, case .isCertificateAuthority = constraints else {
            throw SigilloError(.invalidRequest, "the trusted-list entry is for a CA certificate (basicConstraints CA:TRUE)")
        }
        guard !names.isEmpty, names.values.allSatisfy({ !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            throw SigilloError(.invalidRequest, "the service needs a name")
        }
        for language in names.keys {
            guard language.count == 2, language.allSatisfy({ ("a"..."z").contains($0) }) else {
                throw SigilloError(.invalidRequest, "a service name language must be two lower-case letters, got '\(language)'")
            }
        }
        self.certificate = certificate
        self.names = names
        self.policyOID = policyOID
        self.qscdManagedOnBehalf = qscdManagedOnBehalf
        self.statusStartingTime = statusStartingTime
    }

    /// The qualifiers the entry gives the certificates naming `policyOID`.
    public var qualifiers: [String] {
        var qualifiers = ["QCStatement", "QCForESig"]
        if self.qscdManagedOnBehalf { qualifiers += ["QCWithQSCD", "QCQSCDManagedOnBehalf"] }
        return qualifiers.map { Self.serviceInformationExtensionBase + $0 }
    }

    /// The `tsl:TSPService` element, UTF-8 XML with an XML declaration, namespaces declared on the element.
    public func xml() throws -> String {
        let der = try CertificateAuthority.der(of: self.certificate)
        let ski = try self.certificate.extensions.subjectKeyIdentifier.map { Array($0.keyIdentifier) }
            ?? Array(SubjectKeyIdentifier(hash: self.certificate.publicKey).keyIdentifier)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        let names = self.names.sorted { ($0.key == "en" ? "" : $0.key) < ($1.key == "en" ? "" : $1.key) }
        var lines = [
            #"<?xml version="1.0" encoding="UTF-8"?>"#,
            #"<tsl:TSPService xmlns:tsl="\#(Self.namespaceTSL)" xmlns:ecc="\#(Self.namespaceECC)" xmlns:xades="\#(Self.namespaceXAdES)">"#,
            "  <tsl:ServiceInformation>",
            "    <tsl:ServiceTypeIdentifier>\(Self.serviceTypeCAQC)</tsl:ServiceTypeIdentifier>",
            "    <tsl:ServiceName>",
        ]
        lines += names.map { #"      <tsl:Name xml:lang="\#($0.key)">\#(Self.escaped($0.value))</tsl:Name>"# }
        lines += [
            "    </tsl:ServiceName>",
            "    <tsl:ServiceDigitalIdentity>",
            "      <tsl:DigitalId><tsl:X509Certificate>\(Data(der).base64EncodedString())</tsl:X509Certificate></tsl:DigitalId>",
            "      <tsl:DigitalId><tsl:X509SubjectName>\(Self.escaped(self.certificate.subject.description))</tsl:X509SubjectName></tsl:DigitalId>",
            "      <tsl:DigitalId><tsl:X509SKI>\(Data(ski).base64EncodedString())</tsl:X509SKI></tsl:DigitalId>",
            "    </tsl:ServiceDigitalIdentity>",
            "    <tsl:ServiceStatus>\(Self.statusGranted)</tsl:ServiceStatus>",
            "    <tsl:StatusStartingTime>\(formatter.string(from: self.statusStartingTime))</tsl:StatusStartingTime>",
            "    <tsl:ServiceInformationExtensions>",
            #"      <tsl:Extension Critical="true">"#,
            "        <ecc:Qualifications>",
            "          <ecc:QualificationElement>",
            "            <ecc:Qualifiers>",
        ]
        lines += self.qualifiers.map { #"              <ecc:Qualifier uri="\#($0)"/>"# }
        lines += [
            "            </ecc:Qualifiers>",
            #"            <ecc:CriteriaList assert="all">"#,
            "              <ecc:PolicySet>",
            "                <ecc:PolicyIdentifier><xades:Identifier>\(self.policyOID.dotted)</xades:Identifier></ecc:PolicyIdentifier>",
            "              </ecc:PolicySet>",
            "            </ecc:CriteriaList>",
            "          </ecc:QualificationElement>",
            "        </ecc:Qualifications>",
            "      </tsl:Extension>",
            #"      <tsl:Extension Critical="false">"#,
            "        <tsl:AdditionalServiceInformation>",
            #"          <tsl:URI xml:lang="en">\#(Self.serviceInformationExtensionBase)ForeSignatures</tsl:URI>"#,
            "        </tsl:AdditionalServiceInformation>",
            "      </tsl:Extension>",
            "    </tsl:ServiceInformationExtensions>",
            "  </tsl:ServiceInformation>",
            "</tsl:TSPService>",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// `text` with the XML special characters escaped.
    static func escaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }
}
