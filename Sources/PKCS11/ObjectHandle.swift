/// The handle of an object in the token (`CK_OBJECT_HANDLE`): a key, a certificate, a data object.
///
/// Valid for the process's sessions with the token; a token that went away and came back may give the same
/// object another handle (the key cache is dropped then).
public struct ObjectHandle: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The module's number for the object.
    public let rawValue: UInt

    /// The object the module numbers `rawValue`.
    public init(rawValue: UInt) {
        self.rawValue = rawValue
    }

    /// The handle in decimal.
    public var description: String { String(self.rawValue) }
}
