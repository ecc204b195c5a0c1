import Foundation
import Hummingbird
import NIOCore
import SigilloDomain

/// Renders every error as JSON `{"error": code, "error_description": text}` with a stable code.
///
/// Anything that is not a known error becomes a 500 `internal_error` without details (they go to the log):
/// every 500 is a bug.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response()
        } catch let error as SigilloError {
            return APIError(error).response()
        } catch is NIOTooManyBytesError {
            return APIError(status: .contentTooLarge, code: "payload_too_large", description: "The request body is too large").response()
        } catch let error as HTTPError {
            let code: String
            switch error.status {
            case .notFound: code = "not_found"
            case .contentTooLarge: code = "payload_too_large"
            case .methodNotAllowed: code = "method_not_allowed"
            case .unauthorized: code = "invalid_token"
            default: code = error.status.code < 500 ? "invalid_request" : "internal_error"
            }
            return APIError(status: error.status, code: code, description: error.body ?? error.status.reasonPhrase).response()
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            return APIError(status: .internalServerError, code: "internal_error", description: "internal error").response()
        }
    }
}

/// An HTTP error with a stable JSON code (the CSC error shape).
public struct APIError: Error, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let description: String

    public init(status: HTTPResponse.Status, code: String, description: String) {
        self.status = status
        self.code = code
        self.description = description
    }

    init(_ error: SigilloError) {
        let status: HTTPResponse.Status
        switch error.code {
        case .notFound: status = .notFound
        case .conflict, .illegalTransition: status = .conflict
        case .invitationExpired, .invitationUsed, .linkExpired: status = .gone
        case .tokenUnavailable, .databaseUnavailable: status = .serviceUnavailable
        case .tooManyRequests: status = .tooManyRequests
        case .pinLocked, .otpLocked: status = .forbidden
        case .internalError: status = .internalServerError
        default: status = .badRequest
        }
        self.init(status: status, code: error.code.rawValue, description: error.message)
    }

    func response() -> Response {
        struct Body: Encodable {
            let error: String
            let error_description: String
        }
        let data = (try? JSONEncoder().encode(Body(error: self.code, error_description: self.description))) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: self.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
