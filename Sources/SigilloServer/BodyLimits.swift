/// How large a request body each group of routes reads (a larger one gets 413 `payload_too_large`). Each controller
/// collects its bodies with its own limit, so one route's needs (a signHash of thousands of SHA-512 digests) do
/// not widen another's (a login form).
enum BodyLimits {
    /// The CSC API (`/csc/v1`, `/csc/v2`).
    static let csc = 1 << 20
    /// JSON routes and forms of holders: activation, recovery, self-service, the web pages.
    static let holderForms = 64 << 10
    /// An OCSP request (POST body, or the base64 of a GET).
    static let ocsp = 64 << 10
    /// An RFC 3161 time-stamp query (a digest, a policy, a nonce: under a hundred bytes).
    static let timeStampQuery = 8 << 10
    /// The admin API (the largest body is a hardware token seed file).
    static let admin = 64 << 10
}
