import Foundation
import Hummingbird
import Logging
import NIOCore
import SigilloDomain

/// Bounds the anonymous routes of the public listener: CSC `auth/login` (v1 and v2), `/activation/v1`,
/// `/recovery/v1`, `/selfservice/v1`, and the web forms that post to the same use cases (`/activate`, `/status`,
/// `/renew`, `/recovery/...`, `/oauth2/authorize`), by client address (`AddressRateLimiter`, in memory) and then by the account the request
/// names (`AccountRateLimiter`, in the store, across nodes). Over a limit: 429 `too_many_requests` with `Retry-After`
/// (JSON, or the error page for the web forms), audited as `ratelimit` `throttled` (aggregated: see `AuditAggregator`).
///
/// Routes behind a bearer token, the static pages, health, CA certificate, CRL and OCSP are not counted here.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = SigilloContext

    /// What kind of anonymous route a request is for.
    enum Route: Equatable {
        /// `POST /csc/v1|v2/auth/login`: the account is the HTTP Basic username.
        case cscLogin
        /// A JSON route (`activation`, `recovery`, `selfservice`).
        case api(String)
        /// A web form (or one of the two pages that read a code from the query).
        case web

        /// The audit's `details`: the route family, never caller input.
        var family: String {
            switch self {
            case .cscLogin: "csc.login"
            case .api(let name): name
            case .web: "web"
            }
        }
    }

    /// The request fields that name an account (the same ones the handlers read).
    static let accountFields = ["username", "email", "account", "code", "token"]

    let settings: RateLimitSettings
    let addresses: AddressRateLimiter?
    let accounts: AccountRateLimiter?
    let audit: AuditLog
    /// The trusted proxies' addresses, parsed.
    let trustedProxies: Set<[UInt8]>

    init(settings: RateLimitSettings, store: any ThrottleStore, audit: AuditLog, clock: ServiceClock) {
        self.settings = settings
        self.addresses = settings.perAddress > 0
            ? AddressRateLimiter(capacity: settings.perAddress, window: settings.window, maxEntries: settings.maxTrackedAddresses, clock: clock) : nil
        self.accounts = settings.perAccount > 0 ? AccountRateLimiter(store: store, limit: settings.perAccount, window: settings.window, clock: clock) : nil
        self.audit = audit
        self.trustedProxies = Set(settings.trustedProxies.compactMap(ClientAddress.parse))
    }

    /// The anonymous route `method path` is, if any. Path segments are compared decoded and case-folded, and empty
    /// ones skipped, so `//Recovery/v1/%75sername/` counts like `/recovery/v1/username` (over-counting is harmless,
    /// a way around is not).
    static func route(method: HTTPRequest.Method, path: String) -> Route? {
        let segments = path.split(separator: "/").map { ($0.removingPercentEncoding ?? String($0)).lowercased() }
        guard let first = segments.first else { return nil }
        let reading = method == .get || method == .head
        switch first {
        case "csc":
            return segments.count >= 4 && segments[2] == "auth" && segments[3] == "login" ? .cscLogin : nil
        case "activation", "selfservice":
            return .api(first)
        case "recovery" where segments.count > 1 && segments[1] == "v1":
            return .api(first)
        case "oauth2":
            // The holder's authorization page: its GET looks a client and a request up, its POST checks secrets.
            return segments == ["oauth2", "authorize"] ? .web : nil
        case "activate", "status", "renew", "recovery":
            // The form pages are static, except those that look a code up.
            guard reading else { return .web }
            let looksUp = segments == ["activate"] || segments == ["recovery", "password"] || segments == ["recovery", "device", "confirm"]
            return looksUp ? .web : nil
        default:
            return nil
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard self.addresses != nil || self.accounts != nil, let route = Self.route(method: request.method, path: request.uri.path) else {
            return try await next(request, context)
        }
        if let addresses = self.addresses {
            let client = ClientAddress.of(
                peer: context.remoteAddress, forwardedFor: request.headers[.init("X-Forwarded-For")!], settings: self.settings, trusted: self.trustedProxies)
            if case .refused(let retryAfter) = addresses.admit(client.key) {
                return await self.refuse(route, limit: "address", retryAfter: retryAfter, context: context)
            }
        }
        var request = request
        if let accounts = self.accounts {
            for account in try await Self.accounts(&request, route: route, context: context) {
                let decision: AddressRateLimiter.Decision
                do {
                    decision = try await accounts.admit(account)
                } catch {
                    // The store failing is the handler's to report; the address limit still held.
                    context.logger.warning("per-account rate limit unavailable", metadata: ["error": "\(error)"])
                    break
                }
                if case .refused(let retryAfter) = decision {
                    return await self.refuse(route, limit: "account", retryAfter: retryAfter, context: context)
                }
            }
        }
        return try await next(request, context)
    }

    /// The accounts `request` names: the Basic username of a CSC login, the `accountFields` of a JSON body or form, the
    /// `code` of a page's query. The body, read here, is put back for the handler.
    static func accounts(_ request: inout Request, route: Route, context: Context) async throws -> [String] {
        switch route {
        case .cscLogin:
            return BasicCredentials(request.headers).map { [$0.username] } ?? []
        case .api, .web:
            var found = self.accountFields.compactMap { request.uri.queryParameters.get($0) }
            guard request.method != .get, request.method != .head else { return found }
            // Too large a body ends in JSONErrorMiddleware as 413, as it would in the handler.
            let buffer = try await request.collectBody(upTo: BodyLimits.holderForms)
            if route == .web {
                let form = (try? await WebController.form(Request(head: request.head, body: .init(buffer: buffer)), context)) ?? [:]
                found += self.accountFields.compactMap { form[$0] }
            } else if let fields = try? JSONDecoder().decode(AccountFields.self, from: Data(buffer: buffer)) {
                found += fields.values
            }
            return found.filter { !$0.isEmpty }
        }
    }

    /// The string `accountFields` of a JSON object; a field of another type is skipped, not a reason to skip the rest.
    struct AccountFields: Decodable {
        var values: [String] = []

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: AnyCodingKey.self)
            for name in RateLimitMiddleware.accountFields {
                if let value = try? container.decodeIfPresent(String.self, forKey: AnyCodingKey(stringValue: name)) { self.values.append(value) }
            }
        }
    }

    /// The 429 answer, audited (aggregated).
    private func refuse(_ route: Route, limit: String, retryAfter: Int, context: Context) async -> Response {
        do {
            try await self.audit.record("anonymous", "ratelimit", target: limit, outcome: "throttled", details: route.family)
        } catch {
            context.logger.error("rate limit not audited", metadata: ["error": "\(error)"])
        }
        let error = SigilloError(.tooManyRequests, "too many requests: try again in \(retryAfter) s")
        var response: Response
        if route == .web {
            let values: [String: Any] = [
                "error": ["code": error.code.rawValue, "message": "Troppe richieste: riprova tra \(retryAfter) secondi. / " + error.message],
                "link": ["href": "/", "label": "Torna all'inizio / start again"],
            ]
            response = WebController.page("message", title: "Troppe richieste / too many requests", values, status: .tooManyRequests)
        } else {
            response = APIError(error).response()
        }
        response.headers[.retryAfter] = String(retryAfter)
        return response
    }
}
