import Hummingbird
import NIOCore

/// The admin listener's request context: the connection (to read the client certificate) and, once
/// `OperatorMiddleware` ran, the operator's certificate subject.
public struct AdminContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The TLS connection the request came on.
    public let channel: any Channel
    /// The subject of the operator's client certificate (RFC 4514 form), set by `OperatorMiddleware`.
    public var operatorSubject: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    public var maxUploadSize: Int { BodyLimits.admin }

    /// The authenticated operator. - Throws: 403 when no client certificate was presented.
    func requireOperator() throws -> String {
        guard let subject = self.operatorSubject else {
            throw APIError(status: .forbidden, code: "operator_required", description: "a client certificate from the admin CA is required")
        }
        return subject
    }
}
