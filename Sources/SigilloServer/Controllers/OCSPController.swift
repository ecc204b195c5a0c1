import Crypto
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
    let clock: ServiceClock

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

    /// GET answers are cacheable (RFC 5019 §6): the same request URL gets the same pre-signed answer until it is signed
    /// again, so HTTP caches and CDNs may keep it, with `max-age` bounded by `maxAge` (a revocation must show soon).
    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        guard let der = Self.decodeGETPath(request.uri.path) else {
            return Self.answer(OCSPResponder.errorResponse(.malformedRequest))
        }
        let answer = await self.responder.answer(to: der)
        guard let thisUpdate = answer.thisUpdate, let nextUpdate = answer.nextUpdate else { return Self.answer(answer.der) }
        let etag = "\"" + Data(SHA256.hash(data: answer.der).prefix(18)).base64EncodedString() + "\""
        let now = self.clock.now()
        let maxAge = max(0, min(Self.maxAge, Int(nextUpdate.timeIntervalSince(now).rounded(.down))))
        var headers = HTTPFields()
        headers[.contentType] = "application/ocsp-response"
        headers[.cacheControl] = "max-age=\(maxAge), public, no-transform, must-revalidate"
        headers[.eTag] = etag
        headers[.lastModified] = HTTPDate.format(thisUpdate)
        headers[.expires] = HTTPDate.format(now.addingTimeInterval(TimeInterval(maxAge)))
        if let ifNoneMatch = request.headers[.ifNoneMatch], ifNoneMatch.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag }) {
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: answer.der)))
    }

    /// The longest an HTTP cache may keep a GET answer: five minutes, as for the CRL (the answer itself is valid longer).
    static var maxAge: Int { 300 }

    /// The DER request in `/ocsp/<url-encoded base64>` (base64url and missing padding accepted too).
    static func decodeGETPath(_ path: String) -> [UInt8]? {
        guard let range = path.range(of: "/ocsp/") else { return nil }
        let encoded = String(path[range.upperBound...])
        guard encoded.count <= 4 * Self.maxRequestSize / 3 + 4, let base64 = encoded.removingPercentEncoding,
              let der = Base64Text.decodeLenient(base64.filter { !$0.isWhitespace }), !der.isEmpty else { return nil }
        return der
    }

    /// An answer no cache keeps (POST answers, error statuses).
    static func answer(_ der: [UInt8]) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/ocsp-response"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: der)))
    }
}

/// IMF-fixdate (RFC 9110 §5.6.7), as `Last-Modified` and `Expires` want it.
enum HTTPDate {
    static func format(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}
