import Hummingbird
import NIOCore
import NIOSSL
import X509

/// Reads the operator's identity from the TLS connection: the subject of the client certificate that the
/// TLS handshake already verified against the admin CA (mutual TLS), and puts it in the context.
///
/// The listener refuses clients without a valid certificate during the handshake; this middleware is a second
/// line that answers 403 if a request somehow arrives without one.
struct OperatorMiddleware: RouterMiddleware {
    typealias Context = AdminContext

    func handle(_ request: Request, context: AdminContext, next: (Request, AdminContext) async throws -> Response) async throws -> Response {
        guard let peer = try? await context.channel.nioSSL_peerCertificate().get(),
              let certificate = try? Certificate(derEncoded: peer.toDERBytes()) else {
            throw APIError(status: .forbidden, code: "operator_required", description: "a client certificate from the admin CA is required")
        }
        var context = context
        context.operatorSubject = certificate.subject.description
        return try await next(request, context)
    }
}
