import Hummingbird
import NIOCore

/// The public listener's request context: the CSC body limit, the client's address, and the holder once a bearer
/// token was accepted.
public struct SigilloContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `BearerAuthenticator` when the request carries a valid access token.
    public var identity: BearerIdentity?
    /// The TCP peer (nil without a connection, as in router tests). `RateLimitMiddleware` counts anonymous requests by it.
    public let remoteAddress: SocketAddress?

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// Bodies larger than this get 413: a signHash of thousands of SHA-512 hashes fits easily.
    public var maxUploadSize: Int { BodyLimits.csc }
}
