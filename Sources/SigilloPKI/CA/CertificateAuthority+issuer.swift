import Foundation
import SigilloDomain
import X509

extension CertificateAuthority: CertificateIssuer {
    /// `issueHolderCertificate`, as the domain keeps it.
    public func issue(publicKeySPKI: [UInt8], for holder: HolderIdentity, notBefore: Date, validityYears: Int, pkiBaseURL: String) async throws -> IssuedCertificate {
        let certificate = try await self.issueHolderCertificate(
            publicKeySPKI: publicKeySPKI, holder: holder, notBefore: notBefore, validityYears: validityYears, pkiBaseURL: pkiBaseURL)
        return IssuedCertificate(
            der: try Self.der(of: certificate), serialNumber: Self.serialHex(certificate.serialNumber),
            notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter)
    }
}

extension CRLPublisher: RevocationList {
    public func currentList() async throws -> (der: [UInt8], number: Int64) {
        let published = try await self.current()
        return (published.der, published.number)
    }
}
