import Foundation

/// What an operator of the service chooses: public URL, lifetimes, limits.
public struct DomainSettings: Sendable {
    public var publicBaseURL: String
    /// Where relying parties fetch the CA certificate, the CRL and OCSP answers: written in every certificate issued.
    public var pkiBaseURL: String
    /// How long a SAD lives.
    public var sadLifetime: TimeInterval = 300
    /// The longest a SAD lives from its authorization, however often `extendTransaction` extends it.
    public var sadMaxLifetime: TimeInterval = 1800
    /// How long an activation invitation is valid.
    public var invitationValidity: TimeInterval = 365 * 86_400
    public var smsCodeLifetime: TimeInterval = 300
    public var defaultMultisign = 100
    /// Issuer shown by authenticator apps.
    public var otpIssuer = "Sigillo"
    public var certificateValidityYears = 3

    /// - Parameter pkiBaseURL: the publication listener's URL; by default the public one.
    public init(publicBaseURL: String, pkiBaseURL: String? = nil) {
        self.publicBaseURL = publicBaseURL
        self.pkiBaseURL = pkiBaseURL ?? publicBaseURL
    }
}
