import Foundation
import Hummingbird
import NIOCore
import CSCProtocol
import SigilloDomain
import SigilloPKI

/// The OCSP responder (RFC 6960 appendix A): `POST /ocsp` with an `application/ocsp-request` body, or
/// `GET /ocsp/<base64 of the DER request, URL-encoded>`. Every answer is a DER `OCSPResponse`
/// (`application/ocsp-response`), a malformed request included: it gets the OCSP status `malformedRequest`.
struct OCSPController<Context: RequestContext>: Sendable {
    let responder: OCSPResponder

    /// Largest request accepted (a request names certificates by hash and serial: a few hundred bytes each).
    static var maxRequestSize: Int { BodyLimits.ocsp }

    func addRoutes(to router: Router<Context>) {
        router.post("/ocsp", use: self.post)
        router.get("/ocsp/**", use: self.get)
    }

    @Sendable func post(_ request: Request, context: Context) async throws -> Response {
        guard let buffer = try? await request.body.collect(upTo: Self.maxRequestSize) else {
            return Self.answer(OCSPResponder.errorResponse(.malformedRequest))
        }
        return Self.answer(await self.responder.respond(to: Array(buffer: buffer)))
    }

    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        guard let der = Self.decodeGETPath(request.uri.path) else {
            return Self.answer(OCSPResponder.errorResponse(.malformedRequest))
        }
        return Self.answer(await self.responder.respond(to: der))
    }

    /// The DER request in `/ocsp/<url-encoded base64>` (base64url and missing padding accepted too).
    static func decodeGETPath(_ path: String) -> [UInt8]? {
        guard let range = path.range(of: "/ocsp/") else { return nil }
        let encoded = String(path[range.upperBound...])
        guard encoded.count <= 4 * Self.maxRequestSize / 3 + 4, let base64 = encoded.removingPercentEncoding,
              let der = Base64Text.decodeLenient(base64.filter { !$0.isWhitespace }), !der.isEmpty else { return nil }
        return der
    }

    static func answer(_ der: [UInt8]) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/ocsp-response"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: der)))
    }
}
