import Foundation
import PKCS11

/// A holder certificate as the domain keeps it with the credential.
public struct IssuedCertificate: Sendable, Equatable {
    public var der: [UInt8]
    /// The serial number, upper-case hex (as stored and as the CRL and OCSP look it up).
    public var serialNumber: String
    public var notBefore: Date
    public var notAfter: Date

    public init(der: [UInt8], serialNumber: String, notBefore: Date, notAfter: Date) {
        self.der = der
        self.serialNumber = serialNumber
        self.notBefore = notBefore
        self.notAfter = notAfter
    }
}

/// The certificate authority as the domain uses it: it certifies a holder's public key (activation, renewal).
/// `SigilloPKI.CertificateAuthority`, whose key is in the token, is the implementation.
public protocol CertificateIssuer: Sendable {
    /// The CA's own certificate, DER (the end of every holder's chain).
    var certificateDER: [UInt8] { get }

    /// Certifies `publicKeySPKI` (SubjectPublicKeyInfo, DER) for `holder`, valid from `notBefore` for `validityYears`,
    /// naming the CRL, OCSP and CA-issuer URLs under `pkiBaseURL`.
    func issue(publicKeySPKI: [UInt8], for holder: HolderIdentity, notBefore: Date, validityYears: Int, pkiBaseURL: String) async throws -> IssuedCertificate
}

/// The CA's revocation list as the domain needs it: told when a certificate's status changes, asked to keep it fresh.
/// `SigilloPKI.CRLPublisher` is the implementation.
public protocol RevocationList: Sendable {
    /// A status changed (suspend, reinstate, revoke): the next request builds a new list.
    func markDirty() async
    /// The current list (rebuilt first when stale): DER and CRL number.
    func currentList() async throws -> (der: [UInt8], number: Int64)
}

extension CertificateIssuer {
    /// The active credential `key` (generated as `id`) makes for `holder`: its certificate issued now as `settings` say
    /// (validity, PKI URLs), the key's columns set. Activation, renewal and key migration all make theirs here.
    func credential(id: String, key: HolderKeys.Generated, algorithm: KeyAlgorithm, multisign: Int, for holder: Holder, at now: Date,
                    settings: DomainSettings) async throws -> Credential {
        let identity = HolderIdentity(givenName: holder.givenName, surname: holder.surname, fiscalCode: holder.fiscalCode, email: holder.email)
        let certificate = try await self.issue(
            publicKeySPKI: key.publicKey, for: identity, notBefore: now, validityYears: settings.certificateValidityYears, pkiBaseURL: settings.pkiBaseURL)
        var credential = Credential(
            id: id, holderID: holder.id, keyAlgorithm: algorithm, tokenKeyID: id,
            certificateDER: certificate.der, serialNumber: certificate.serialNumber,
            notBefore: certificate.notBefore, notAfter: certificate.notAfter, status: .active, multisign: multisign)
        key.store(in: &credential)
        return credential
    }
}
