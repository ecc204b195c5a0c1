import Hummingbird
import NIOCore
import SigilloPKI

/// What relying parties fetch without authentication: `GET /ca.cer` (the CA certificate, DER), `GET /ca.p7c` (the CA
/// certificate and its chain up to the root, certs-only CMS) and `GET /crl/ca.crl` (the current CRL, DER), the URLs
/// written in every holder certificate.
struct PKIController<Context: RequestContext>: Sendable {
    let ca: CertificateAuthority
    let crl: CRLPublisher

    func addRoutes(to router: Router<Context>) {
        router.get("/ca.cer", use: self.caCertificate)
        router.get("/ca.p7c", use: self.caChain)
        router.get("/crl/ca.crl", use: self.crl)
    }

    @Sendable func caCertificate(_ request: Request, context: Context) async throws -> Response {
        Self.der(self.ca.certificateDER, contentType: "application/pkix-cert", maxAge: 86_400)
    }

    /// The CA certificate and the chain above it up to the root, a certs-only CMS message (RFC 5280 §4.2.2.1).
    @Sendable func caChain(_ request: Request, context: Context) async throws -> Response {
        Self.der(self.ca.chainBundle, contentType: "application/pkcs7-mime", maxAge: 86_400)
    }

    @Sendable func crl(_ request: Request, context: Context) async throws -> Response {
        let crl = try await self.crl.current()
        // Caches may keep it until it would be rebuilt anyway, and never past a few minutes (revocations are urgent).
        return Self.der(crl.der, contentType: "application/pkix-crl", maxAge: 300)
    }

    static func der(_ bytes: [UInt8], contentType: String, maxAge: Int) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = "public, max-age=\(maxAge)"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
