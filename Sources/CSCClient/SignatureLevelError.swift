/// Why a CAdES-B-T or B-LT signature could not be completed: no time-stamping authority, a time-stamp or revocation
/// source that failed or answered something unusable, or a certificate found revoked. A stable code and a message
/// for people, as `CertificateError` in swift-certificates.
public struct SignatureLevelError: Error, Hashable, CustomStringConvertible, Sendable {
    /// The kinds of failure.
    public enum Code: String, Hashable, Sendable {
        /// B-T or B-LT asked for and neither `--tsa`/`SIGILLO_TSA_URL` nor the service's `signatures/timestamp`.
        case noTimeStampAuthority
        /// The TSA refused, could not be reached, or sent a token that does not answer the request.
        case timeStampFailed
        /// A CRL or OCSP response could not be fetched, did not parse, was not signed by the issuer, or is stale.
        case revocationDataUnavailable
        /// The signer's certificate is revoked (or unknown to its OCSP responder): no B-LT file is written.
        case certificateRevoked
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { self.reason }
}
