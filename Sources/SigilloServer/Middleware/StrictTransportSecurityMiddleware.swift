import Hummingbird

/// Puts `Strict-Transport-Security` on every answer of a TLS listener: routes, JSON errors, unknown routes, the web
/// pages, and what the middlewares behind it answer themselves. It goes first on each router, so that it wraps them all.
///
/// One year, for the listener's host only. No `includeSubDomains` (nor `preload`): it would speak for every name under
/// that host, and the server cannot know what else runs there (its own CRL and OCSP distribution points are plain
/// `http://` by design, RFC 5280 and RFC 5019); an operator who owns the whole domain adds it at the front proxy.
///
/// An error thrown by a middleware behind it (a refusal before the router's `JSONErrorMiddleware`) is rendered here the
/// same way, rather than by Hummingbird, so that it carries the header too. What Hummingbird answers before routing (400
/// on a request it cannot parse) has no header: no browser learns a policy from those.
struct StrictTransportSecurityMiddleware<Context: RequestContext>: RouterMiddleware {
    /// One year, in seconds.
    static var value: String { "max-age=31536000" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await JSONErrorMiddleware<Context>().handle(request, context: context, next: next)
        response.headers[.strictTransportSecurity] = Self.value
        return response
    }
}
