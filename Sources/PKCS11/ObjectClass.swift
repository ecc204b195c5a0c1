internal import CPKCS11

/// A PKCS#11 object class (`CK_OBJECT_CLASS`), the value of `CKA_CLASS`: `Attribute.objectClass(.privateKey)`.
public struct ObjectClass: RawRepresentable, Hashable, Sendable {
    /// The numeric value, as the PKCS#11 specification defines it.
    public let rawValue: UInt

    /// The object class numbered `rawValue`.
    public init(rawValue: UInt) {
        self.rawValue = rawValue
    }

    private init(_ value: some BinaryInteger) {
        self.rawValue = UInt(value)
    }

    /// `CKO_DATA`: application data.
    public static let data = ObjectClass(CKO_DATA)
    /// `CKO_CERTIFICATE`: a certificate.
    public static let certificate = ObjectClass(CKO_CERTIFICATE)
    /// `CKO_PUBLIC_KEY`: the public half of a key pair.
    public static let publicKey = ObjectClass(CKO_PUBLIC_KEY)
    /// `CKO_PRIVATE_KEY`: the private half of a key pair.
    public static let privateKey = ObjectClass(CKO_PRIVATE_KEY)
    /// `CKO_SECRET_KEY`: a symmetric key (the seed vault's HMAC key).
    public static let secretKey = ObjectClass(CKO_SECRET_KEY)
}
