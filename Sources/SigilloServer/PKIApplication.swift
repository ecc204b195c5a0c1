import Foundation
import Hummingbird
import Logging
import NIOCore
import SigilloPKI

/// The publication listener relying parties use: plain HTTP (everything it serves is signed), the URLs written in every
/// certificate the CA issues. `GET /ca.cer`, `GET /ca.p7c`, `GET /crl/ca.crl`, `POST /ocsp`, `GET /ocsp/{base64}`, and `POST /tsa`
/// when a time-stamping authority is configured, and its OpenAPI document `GET /openapi.json`; any other path is 404. No cookies,
/// no holder data.
public enum PKIApplication {
    /// The routes of the publication listener.
    public static func router(services: SigilloServices) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: RequestIDMiddleware(listener: "publication", metrics: services.metrics))
        OpenAPIController(OpenAPI.publicationListener(timeStamps: services.tsa != nil)).addRoutes(to: router)
        PKIController(ca: services.ca, crl: services.crl).addRoutes(to: router)
        OCSPController(responder: services.ocsp, clock: services.domain.clock).addRoutes(to: router)
        if let tsa = services.tsa {
            TSAController(tsa: tsa).addRoutes(to: router)
        }
        return router
    }

    /// The plain-HTTP application on `configuration.pkiHost:pkiPort`.
    public static func make(configuration: ServerConfiguration, services: SigilloServices, logger: Logger,
                            onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            router: self.router(services: services),
            server: .http1(),
            configuration: .init(address: .hostname(configuration.pkiHost, port: configuration.pkiPort), serverName: "Sigillo PKI"),
            onServerRunning: onServerRunning,
            logger: logger
        )
    }
}

/// RFC 3161 over HTTP (§3.4): `POST /tsa` with an `application/timestamp-query` body, answered with an
/// `application/timestamp-reply` — a granted token, or a rejection with its `PKIFailureInfo` (a malformed query
/// included: never an HTTP error without a reply). When the TSA's signing budget is spent the rejection comes with
/// 503 and `Retry-After`, so clients and load balancers back off.
struct TSAController<Context: RequestContext>: Sendable {
    let tsa: TimeStampAuthority

    func addRoutes(to router: Router<Context>) {
        router.post("/tsa", use: self.post)
    }

    @Sendable func post(_ request: Request, context: Context) async throws -> Response {
        // Too large is malformed: the TSA rejects an empty query with badDataFormat.
        let body = (try? await request.body.collect(upTo: BodyLimits.timeStampQuery)).map { Array(buffer: $0) } ?? []
        let reply = await self.tsa.respond(to: body)
        var headers = HTTPFields()
        headers[.contentType] = "application/timestamp-reply"
        headers[.cacheControl] = "no-store"
        var status = HTTPResponse.Status.ok
        if reply.busy {
            status = .serviceUnavailable
            headers[.retryAfter] = String(reply.retryAfter ?? 1)
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: reply.der)))
    }
}
