import Crypto

/// The HMAC hash of an HOTP/TOTP generator (RFC 4226, RFC 6238).
public enum OTPAlgorithm: String, Sendable, Hashable, CaseIterable, Codable {
    case sha1 = "SHA1"
    case sha256 = "SHA256"
    case sha512 = "SHA512"

    /// The name used in `otpauth://` URIs (`SHA1`, `SHA256`, `SHA512`).
    public var uriName: String { self.rawValue }

    /// The secret length RFC 6238 uses with this hash (20, 32, 64 bytes): the hash's output size.
    public var recommendedSecretLength: Int {
        switch self {
        case .sha1: 20
        case .sha256: 32
        case .sha512: 64
        }
    }

    /// HMAC of `message` under `key`.
    func authenticationCode(key: [UInt8], message: [UInt8]) -> [UInt8] {
        let key = SymmetricKey(data: key)
        switch self {
        case .sha1: return Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: key))
        case .sha256: return Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
        case .sha512: return Array(HMAC<SHA512>.authenticationCode(for: message, using: key))
        }
    }
}
