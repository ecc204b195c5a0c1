import Foundation
import SigilloDomain
import SwiftASN1
import X509

extension CertificateAuthority {
    /// Issues a time-stamping authority's certificate.
    ///
    /// Subject `name`; extended key usage id-kp-timeStamping only, critical (RFC 3161 §2.3); keyUsage
    /// digitalSignature + nonRepudiation, critical; basicConstraints not a CA; subject and authority key identifiers;
    /// CRL distribution point `<pkiBaseURL>/crl/ca.crl`; authority information access with OCSP `<pkiBaseURL>/ocsp`
    /// and CA issuers (`caIssuersURL`); a random positive 16-byte serial number.
    ///
    /// - Parameters:
    ///   - publicKeySPKI: the TSA's public key (SubjectPublicKeyInfo, DER): EC P-256/P-384 or RSA 2048–4096.
    ///   - name: the TSA's subject name.
    ///   - notBefore: start of validity (truncated to whole seconds).
    ///   - validityYears: the certificate expires this many calendar years after `notBefore` (1 to 100).
    ///   - pkiBaseURL: the plain-HTTP publication URL, e.g. `http://pki.example.it` (a trailing `/` is ignored).
    /// - Throws: `SigilloError.invalidRequest` for bad input; `PKCS11Error` from the token.
    public func issueTimeStampingCertificate(
        publicKeySPKI: [UInt8],
        name: DistinguishedName,
        notBefore: Date,
        validityYears: Int,
        pkiBaseURL: String
    ) async throws -> Certificate {
        let publicKey = try Self.holderPublicKey(publicKeySPKI)
        let start = Self.wholeSeconds(notBefore)
        let end = try Self.adding(years: validityYears, to: start)
        let baseURL = try Self.normalizedBaseURL(pkiBaseURL)
        guard !name.isEmpty else {
            throw SigilloError(.invalidRequest, "the TSA certificate needs a subject name")
        }
        let extensions = try Certificate.Extensions {
            Critical(try ExtendedKeyUsage([.timeStamping]))
            Critical(KeyUsage(digitalSignature: true, nonRepudiation: true))
            BasicConstraints.notCertificateAuthority
            SubjectKeyIdentifier(hash: publicKey)
            AuthorityKeyIdentifier(keyIdentifier: self.keyIdentifier[...])
            self.crlDistributionPoints(baseURL: baseURL)
            self.authorityInformationAccess(baseURL: baseURL)
        }
        return try await self.sign(publicKey: publicKey, subject: name, notBefore: start, notAfter: end, extensions: extensions)
    }
}
