import Foundation

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
