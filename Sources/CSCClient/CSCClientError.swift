/// A failed CSC call: the service's `{"error", "error_description"}` answer, or why there was no usable answer.
public struct CSCClientError: Error, Hashable, CustomStringConvertible, Sendable {
    /// The CSC method, e.g. `credentials/authorize`.
    public let method: String
    /// The HTTP status, when the service answered.
    public let status: Int?
    /// The CSC error code (`invalid_request`, `invalid_otp`, `expired_token`, …), or one of this client's:
    /// `transport_error` (no answer), `invalid_response` (an answer this client cannot read),
    /// `http_<status>` (an error without the CSC JSON shape).
    public let error: String
    /// The service's `error_description`, or this client's explanation.
    public let errorDescription: String?

    public init(method: String, status: Int?, error: String, errorDescription: String?) {
        self.method = method
        self.status = status
        self.error = error
        self.errorDescription = errorDescription
    }

    public var description: String {
        var text = "\(self.method): \(self.error)"
        if let status = self.status { text += " (HTTP \(status))" }
        if let errorDescription = self.errorDescription, !errorDescription.isEmpty { text += ": \(errorDescription)" }
        return text
    }

    static func invalidResponse(_ method: String, status: Int?, _ reason: String) -> CSCClientError {
        CSCClientError(method: method, status: status, error: "invalid_response", errorDescription: reason)
    }
}
