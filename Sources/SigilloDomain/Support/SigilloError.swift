/// A domain error with a stable code, safe to show to clients (never carries secrets or CK_RV values).
///
/// The HTTP layer maps `code` to a status and a CSC error shape; logs may add `underlying`.
public struct SigilloError: Error, Hashable, CustomStringConvertible, Sendable {
    public enum Code: String, Hashable, Sendable, CaseIterable {
        case invalidRequest = "invalid_request"
        case invalidPassword = "invalid_password"
        case weakPassword = "weak_password"
        case invalidOTP = "invalid_otp"
        case otpReplayed = "otp_replayed"
        case pinLocked = "pin_locked"
        case otpLocked = "otp_locked"
        case invalidSAD = "invalid_sad"
        case expiredSAD = "expired_sad"
        case notFound = "not_found"
        case conflict = "conflict"
        /// A holder state change the enrolment/lifecycle does not allow.
        case illegalTransition = "illegal_transition"
        /// A password-reset or device-rebind link that expired or was already used.
        case linkExpired = "link_expired"
        case invitationExpired = "invitation_expired"
        case invitationUsed = "invitation_used"
        case credentialDisabled = "credential_disabled"
        case certificateInvalid = "certificate_invalid"
        case tooManySignatures = "too_many_signatures"
        case invalidToken = "invalid_token"
        case expiredToken = "expired_token"
        case tokenUnavailable = "token_unavailable"
        /// The database (a PostgreSQL server of several nodes) cannot be reached now: try again shortly.
        case databaseUnavailable = "database_unavailable"
        /// Too many messages (SMS codes) asked for in a short time: try again later.
        case tooManyRequests = "too_many_requests"
        case internalError = "internal_error"
    }

    public let code: Code
    /// A message for the client: what is wrong and, where useful, what to do.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(self.code.rawValue): \(self.message)" }
}
