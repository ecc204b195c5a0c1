import Hummingbird
import SigilloDomain

/// CSC API errors in the `{"error", "error_description"}` shape.
enum CSCError {
    static func invalidRequest(_ description: String) -> APIError {
        APIError(status: .badRequest, code: "invalid_request", description: description)
    }

    /// Maps a domain error to the CSC shape of `version` (v1 `invalid_pin`/`invalid_otp`, v2 `invalid_authentication_data`).
    static func from(_ error: SigilloError, version: Int) -> APIError {
        switch error.code {
        case .invalidPassword:
            return APIError(status: .badRequest, code: version == 1 ? "invalid_pin" : "invalid_authentication_data", description: error.message)
        case .invalidOTP, .otpReplayed:
            return APIError(status: .badRequest, code: version == 1 ? "invalid_otp" : "invalid_authentication_data", description: error.message)
        case .pinLocked: return APIError(status: .forbidden, code: "pin_locked", description: "PIN locked")
        case .otpLocked: return APIError(status: .forbidden, code: "otp_locked", description: "OTP locked")
        case .invalidToken: return APIError(status: .unauthorized, code: "invalid_token", description: error.message)
        case .expiredToken: return APIError(status: .unauthorized, code: "expired_token", description: error.message)
        case .notFound: return APIError(status: .badRequest, code: "invalid_request", description: "Invalid parameter credentialID")
        case .tooManySignatures: return APIError(status: .badRequest, code: "invalid_request", description: "Numbers of signatures is too high")
        case .invalidSAD: return APIError(status: .badRequest, code: "invalid_request", description: "Invalid SAD: \(error.message)")
        case .expiredSAD: return APIError(status: .badRequest, code: "invalid_request", description: "SAD expired")
        case .credentialDisabled, .certificateInvalid: return APIError(status: .forbidden, code: error.code.rawValue, description: error.message)
        case .tokenUnavailable, .databaseUnavailable: return APIError(status: .serviceUnavailable, code: "temporarily_unavailable", description: error.message)
        case .tooManyRequests: return APIError(status: .tooManyRequests, code: "too_many_requests", description: error.message)
        case .internalError: return APIError(status: .internalServerError, code: "internal_error", description: "internal error")
        default: return APIError(status: .badRequest, code: error.code == .invalidRequest ? "invalid_request" : error.code.rawValue, description: error.message)
        }
    }
}
