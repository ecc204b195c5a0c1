import Hummingbird

/// The public listener's request context: the CSC body limit, and the holder once a bearer token was accepted.
public struct SigilloContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `BearerAuthenticator` when the request carries a valid access token.
    public var identity: BearerIdentity?

    public init(source: Source) {
        self.coreContext = .init(source: source)
    }

    /// Bodies larger than this get 413: a signHash of thousands of SHA-512 hashes fits easily.
    public var maxUploadSize: Int { BodyLimits.csc }
}
