internal import CPKCS11

/// A PKCS#11 return value (`CK_RV`) such as `CKR_PIN_INCORRECT`: what a module function answered.
///
/// Carried by `PKCS11Error.rv` for logs and for callers that act on a specific code. Its description is the
/// symbolic name (`CKR_ATTRIBUTE_SENSITIVE`), or `CKR_0x…` for a vendor code.
public struct ReturnValue: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The numeric value, as the PKCS#11 specification defines it.
    public let rawValue: UInt

    /// The return value numbered `rawValue`.
    public init(rawValue: UInt) {
        self.rawValue = rawValue
    }

    /// The symbolic name, e.g. `CKR_DEVICE_REMOVED`, or `CKR_0x…` for codes without one.
    public var name: String { ckrName(self.rawValue) }

    /// The symbolic name (`name`).
    public var description: String { self.name }

    /// `CKR_OK`: the function succeeded.
    public static let ok = ReturnValue(rawValue: UInt(CKR_OK))
    /// `CKR_PIN_INCORRECT`: the token refused the PIN.
    public static let pinIncorrect = ReturnValue(rawValue: UInt(CKR_PIN_INCORRECT))
    /// `CKR_PIN_LOCKED`: the PIN is locked after too many wrong attempts.
    public static let pinLocked = ReturnValue(rawValue: UInt(CKR_PIN_LOCKED))
    /// `CKR_ATTRIBUTE_SENSITIVE`: the attribute's value may not be revealed (the secret of a sensitive key).
    public static let attributeSensitive = ReturnValue(rawValue: UInt(CKR_ATTRIBUTE_SENSITIVE))
    /// `CKR_ATTRIBUTE_TYPE_INVALID`: the object has no such attribute.
    public static let attributeTypeInvalid = ReturnValue(rawValue: UInt(CKR_ATTRIBUTE_TYPE_INVALID))
    /// `CKR_KEY_HANDLE_INVALID`: no key has this handle (any longer).
    public static let keyHandleInvalid = ReturnValue(rawValue: UInt(CKR_KEY_HANDLE_INVALID))
    /// `CKR_OBJECT_HANDLE_INVALID`: no object has this handle (any longer).
    public static let objectHandleInvalid = ReturnValue(rawValue: UInt(CKR_OBJECT_HANDLE_INVALID))
    /// `CKR_SESSION_HANDLE_INVALID`: the session was closed (by the token or behind our back).
    public static let sessionHandleInvalid = ReturnValue(rawValue: UInt(CKR_SESSION_HANDLE_INVALID))
    /// `CKR_DEVICE_REMOVED`: the token was removed during the call.
    public static let deviceRemoved = ReturnValue(rawValue: UInt(CKR_DEVICE_REMOVED))
    /// `CKR_DEVICE_ERROR`: the token (or the connection to it) failed.
    public static let deviceError = ReturnValue(rawValue: UInt(CKR_DEVICE_ERROR))
    /// `CKR_CRYPTOKI_NOT_INITIALIZED`: the module is not initialised (a failed re-initialisation).
    public static let cryptokiNotInitialized = ReturnValue(rawValue: UInt(CKR_CRYPTOKI_NOT_INITIALIZED))
    /// `CKR_FUNCTION_NOT_SUPPORTED`: the module does not implement the function.
    public static let functionNotSupported = ReturnValue(rawValue: UInt(CKR_FUNCTION_NOT_SUPPORTED))
}
