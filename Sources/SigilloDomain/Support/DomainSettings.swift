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
    /// Where new holder keys are kept: wrapped under the token's KEK in the credential row (the default), or as token
    /// objects. Existing keys are used where they are either way.
    public var holderKeys: HolderKeyStorage = .wrapped

    /// - Parameter pkiBaseURL: the publication listener's URL; by default the public one.
    public init(publicBaseURL: String, pkiBaseURL: String? = nil) {
        self.publicBaseURL = publicBaseURL
        self.pkiBaseURL = pkiBaseURL ?? publicBaseURL
    }
}

/// Where holder keys are kept (configuration `holderKeys`).
public enum HolderKeyStorage: String, Sendable, Codable, CaseIterable {
    /// Generated as session objects, wrapped under the token's KEK into the credential row; unwrapped on use.
    case wrapped
    /// Token objects with `CKA_ID` = the credential id (SoftHSM's file store and real HSMs limit how many).
    case token
}
