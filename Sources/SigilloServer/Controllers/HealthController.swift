import Hummingbird
import PKCS11
import SigilloDomain

/// `/health/live` (the process answers) and `/health/ready` (the token and the store answer).
struct HealthController<Context: RequestContext>: Sendable {
    let token: Token
    let store: any HolderStore

    func addRoutes(to router: Router<Context>) {
        router.get("/health", use: self.live)
        router.get("/health/live", use: self.live)
        router.get("/health/ready", use: self.ready)
    }

    struct Status: ResponseEncodable {
        let status: String
        let checks: [String: String]
    }

    @Sendable func live(_ request: Request, context: Context) async throws -> Status {
        Status(status: "ok", checks: [:])
    }

    @Sendable func ready(_ request: Request, context: Context) async throws -> Response {
        var checks: [String: String] = [:]
        var ok = true
        do {
            try await self.token.ping()
            checks["token"] = "ok"
        } catch {
            context.logger.warning("readiness: token not answering", metadata: ["error": "\(error)"])
            checks["token"] = "unavailable"
            ok = false
        }
        do {
            _ = try await self.store.holder(id: "")
            checks["store"] = "ok"
        } catch {
            context.logger.warning("readiness: store not answering", metadata: ["error": "\(error)"])
            checks["store"] = "unavailable"
            ok = false
        }
        let status = Status(status: ok ? "ok" : "unavailable", checks: checks)
        var response = try status.response(from: request, context: context)
        response.status = ok ? .ok : .serviceUnavailable
        return response
    }
}
