import Hummingbird
import SigilloDomain

/// The holder a bearer access token (CSC `auth/login`, OAuth2) belongs to, and the token itself (for `auth/revoke`).
public struct BearerIdentity: Sendable {
    public let holderID: String
    public let accessToken: String
    /// Set for an OAuth2 credential-scoped token: it is the SAD of this credential, and signs (`signatures/signHash`) only.
    public var credentialID: String? = nil
    /// False when the holder came from this node's cache of checked tokens (`Authentication.cachedHolderID`), for
    /// `signatures/signHash` only: the token is then checked in the database with the SAD's spending.
    public var checked: Bool = true
}

/// Turns `Authorization: Bearer <token>` into the holder on the request context; refuses the request with 401
/// `invalid_token` (missing, unknown or revoked) or `expired_token` otherwise. Routes behind it read
/// `HolderContext.identity` and never the header.
struct BearerAuthenticator: RouterMiddleware {
    typealias Context = SigilloContext
    let authentication: Authentication

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], Self.isBearer(header) else {
            throw APIError(status: .unauthorized, code: "invalid_token", description: "Missing bearer access token")
        }
        let token = header.dropFirst(7)
        let blank = token.first?.isWhitespace == true || token.last?.isWhitespace == true
        let accessToken = blank ? token.trimmingCharacters(in: .whitespaces) : String(token)
        var context = context
        // signHash checks the token in the same statement that spends the SAD: no read here for a token seen before.
        if request.uri.path.hasSuffix("/signatures/signHash"), let holderID = self.authentication.cachedHolderID(accessToken: accessToken) {
            context.identity = BearerIdentity(holderID: holderID, accessToken: accessToken, checked: false)
            return try await next(request, context)
        }
        do {
            let bearer = try await self.authentication.bearer(accessToken: accessToken)
            context.identity = BearerIdentity(holderID: bearer.holderID, accessToken: accessToken, credentialID: bearer.credentialID)
        } catch let error as SigilloError {
            // Token errors read the same in CSC v1 and v2.
            throw CSCError.from(error, version: 2)
        }
        return try await next(request, context)
    }

    /// Whether the header starts with `Bearer ` in any case (without lower-casing a copy on every request).
    static func isBearer(_ header: String) -> Bool {
        var utf8 = header.utf8.makeIterator()
        for expected in "bearer ".utf8 {
            guard let byte = utf8.next(), byte | (expected == 0x20 ? 0 : 0x20) == expected else { return false }
        }
        return true
    }
}

/// A request whose bearer token was accepted: the holder is known (not optional) to every route of the group.
struct HolderContext: ChildRequestContext {
    var coreContext: CoreRequestContextStorage
    let identity: BearerIdentity

    init(context: SigilloContext) throws {
        guard let identity = context.identity else {
            throw APIError(status: .unauthorized, code: "invalid_token", description: "Missing bearer access token")
        }
        self.coreContext = context.coreContext
        self.identity = identity
    }

    /// As `SigilloContext`: a signHash of thousands of SHA-512 hashes fits easily.
    var maxUploadSize: Int { BodyLimits.csc }
}
