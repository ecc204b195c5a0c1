import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Gives every request an id, puts it in the metadata of every line logged for that request (`hb.request.id`, the key
/// Hummingbird's own lines use) and echoes it as `X-Request-Id` on the answer, then logs one `request` line (method,
/// route, status, milliseconds) at info level and counts the answer and its duration in `metrics`.
///
/// The id is the request's `X-Request-Id` when it is sane (1 to 128 characters from letters, digits and `-_.:=+/@`,
/// so that a front proxy's id carries through), else the one Hummingbird generated. It goes first on every router (public,
/// admin, publication), so that it wraps the other middlewares; an error that reaches it (the publication listener has
/// no JSON error middleware) is rendered here as Hummingbird would, so that it carries the header too. The route is the
/// pattern the router matched (`/csc/v1/credentials/:id`), never the path as sent or its query, which can hold codes.
struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    static var header: HTTPField.Name { HTTPField.Name("X-Request-Id")! }
    static var metadataKey: String { "hb.request.id" }

    /// `public`, `admin` or `publication`: the `listener` label of the request metrics.
    var listener: String = "public"
    /// Counts each answer and its duration; nil: no metrics.
    var metrics: SigilloMetrics? = nil

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let id = request.headers[Self.header].flatMap(Self.sane) ?? context.id
        context.logger[metadataKey: Self.metadataKey] = .string(id)
        let start = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            response = Response(status: .internalServerError)
        }
        response.headers[Self.header] = id
        let elapsed = ContinuousClock.now - start
        let route = context.endpointPath ?? "unmatched"
        self.metrics?.request(listener: self.listener, method: request.method.rawValue, route: route, status: response.status.code, duration: elapsed)
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        context.logger.info("request", metadata: [
            "method": .string(request.method.rawValue),
            "route": .string(route),
            "status": .stringConvertible(response.status.code),
            "ms": .string(String(format: "%.1f", milliseconds)),
        ])
        return response
    }

    /// `value` when it is a usable request id, else nil.
    static func sane(_ value: String) -> String? {
        guard (1...128).contains(value.utf8.count) else { return nil }
        let allowed = Set("-_.:=+/@".utf8)
        for byte in value.utf8 {
            let letterOrDigit = (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
            guard letterOrDigit || allowed.contains(byte) else { return nil }
        }
        return value
    }
}
