internal import CPKCS11

/// An error from the PKCS#11 layer, with a stable code.
///
/// Errors that come from the module carry the function that failed and its return value's name
/// (`C_Login: CKR_PIN_INCORRECT`). The return value belongs in logs, never in a client's response.
public struct PKCS11Error: Error, Hashable, CustomStringConvertible, Sendable {
    /// What went wrong, as callers act on it.
    public enum Code: String, Hashable, Sendable {
        /// The module file could not be loaded (missing, not a PKCS#11 library).
        case moduleLoadFailed
        /// No initialised token with the configured label is present.
        case tokenNotFound
        /// The user PIN was refused by the token.
        case pinIncorrect
        /// The user PIN is locked on the token.
        case pinLocked
        /// The PIN source (file or environment variable) is missing or empty.
        case pinUnavailable
        /// The token went away (removed, sessions closed); the pool re-opens on the next operation.
        case tokenUnavailable
        /// No key with this credential id is in the token.
        case keyNotFound
        /// A key with this credential id is already in the token.
        case keyAlreadyExists
        /// The digest length does not match the hash algorithm.
        case invalidDigestLength
        /// The key cannot be used with this mechanism (an RSA mechanism on an EC key, ...).
        case mechanismMismatch
        /// The module does not implement a function we need.
        case functionNotSupported
        /// A configuration value (URI, module path, session count) is invalid.
        case invalidConfiguration
        /// A wrapped holder key was refused: altered, bound to another credential, or wrapped under another token's KEK.
        case wrappedKeyInvalid
        /// Any other failure reported by the module.
        case moduleError
    }

    /// The stable code.
    public let code: Code
    /// The PKCS#11 function that failed, if the error came from the module.
    public let function: String?
    /// The return value of that function, if any.
    public let rv: ReturnValue?
    /// Human-readable detail, never containing secrets.
    public let detail: String

    /// An error with `code`; `function` and `rv` when the module reported it.
    public init(_ code: Code, function: String? = nil, rv: ReturnValue? = nil, detail: String) {
        self.code = code
        self.function = function
        self.rv = rv
        self.detail = detail
    }

    /// The `CK_RV` name, e.g. `CKR_DEVICE_REMOVED`.
    public var rvName: String? { self.rv?.name }

    /// `PKCS11Error.<code>: <detail> (<function>: <CKR name>)`.
    public var description: String {
        var text = "PKCS11Error.\(self.code.rawValue): \(self.detail)"
        if let function = self.function, let name = self.rvName {
            text += " (\(function): \(name))"
        }
        return text
    }

    /// Maps a module return value to an error, classifying the codes callers act on.
    static func from(_ rv: CK_RV, function: String, detail: String? = nil) -> PKCS11Error {
        let code: Code
        switch rv {
        case UInt(CKR_PIN_INCORRECT), UInt(CKR_PIN_INVALID), UInt(CKR_PIN_LEN_RANGE):
            code = .pinIncorrect
        case UInt(CKR_PIN_LOCKED), UInt(CKR_PIN_EXPIRED):
            code = .pinLocked
        case UInt(CKR_FUNCTION_NOT_SUPPORTED):
            code = .functionNotSupported
        case UInt(CKR_KEY_TYPE_INCONSISTENT), UInt(CKR_MECHANISM_INVALID), UInt(CKR_KEY_FUNCTION_NOT_PERMITTED):
            code = .mechanismMismatch
        case UInt(CKR_DATA_LEN_RANGE):
            code = .invalidDigestLength
        default:
            code = Self.isTokenLoss(rv) ? .tokenUnavailable : .moduleError
        }
        return PKCS11Error(code, function: function, rv: ReturnValue(rawValue: UInt(rv)), detail: detail ?? "\(function) failed with \(ckrName(rv))")
    }

    /// Return values meaning the session or the token went away: the pool re-opens and logs in again.
    static func isTokenLoss(_ rv: CK_RV) -> Bool {
        switch rv {
        case UInt(CKR_DEVICE_REMOVED), UInt(CKR_SESSION_HANDLE_INVALID), UInt(CKR_SESSION_CLOSED),
            UInt(CKR_TOKEN_NOT_PRESENT), UInt(CKR_TOKEN_NOT_RECOGNIZED), UInt(CKR_USER_NOT_LOGGED_IN),
            UInt(CKR_SLOT_ID_INVALID), UInt(CKR_DEVICE_ERROR), UInt(CKR_CRYPTOKI_NOT_INITIALIZED):
            return true
        default:
            return false
        }
    }
}

/// Throws a `PKCS11Error` unless `rv` is `CKR_OK`.
@inline(__always)
func check(_ rv: CK_RV, _ function: String) throws(PKCS11Error) {
    if rv != UInt(CKR_OK) { throw PKCS11Error.from(rv, function: function) }
}
