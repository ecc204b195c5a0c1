internal import CPKCS11

/// A PKCS#11 attribute type (`CK_ATTRIBUTE_TYPE`), e.g. `CKA_ID`: what a template entry or an attribute read names.
///
/// The static members are the attributes Sigillo uses; others can be made with `init(rawValue:)`.
public struct AttributeType: RawRepresentable, Hashable, Sendable {
    /// The numeric value, as the PKCS#11 specification defines it.
    public let rawValue: UInt

    /// The attribute type numbered `rawValue`.
    public init(rawValue: UInt) {
        self.rawValue = rawValue
    }

    private init(_ value: some BinaryInteger) {
        self.rawValue = UInt(value)
    }

    /// `CKA_CLASS`: the object class (`ObjectClass`, a `CK_ULONG`).
    public static let `class` = AttributeType(CKA_CLASS)
    /// `CKA_TOKEN`: stored in the token (true) or a session object (false).
    public static let token = AttributeType(CKA_TOKEN)
    /// `CKA_PRIVATE`: readable only after login.
    public static let `private` = AttributeType(CKA_PRIVATE)
    /// `CKA_LABEL`: a free-text label.
    public static let label = AttributeType(CKA_LABEL)
    /// `CKA_VALUE`: the value of a secret key or an EC private key (never revealed for sensitive keys).
    public static let value = AttributeType(CKA_VALUE)
    /// `CKA_KEY_TYPE`: the key type (`CKK_EC`, `CKK_RSA`, ...).
    public static let keyType = AttributeType(CKA_KEY_TYPE)
    /// `CKA_ID`: the key identifier; Sigillo stores the credential id here.
    public static let id = AttributeType(CKA_ID)
    /// `CKA_SENSITIVE`: the secret parts may not be revealed.
    public static let sensitive = AttributeType(CKA_SENSITIVE)
    /// `CKA_ENCRYPT`: the key may encrypt.
    public static let encrypt = AttributeType(CKA_ENCRYPT)
    /// `CKA_DECRYPT`: the key may decrypt.
    public static let decrypt = AttributeType(CKA_DECRYPT)
    /// `CKA_WRAP`: the key may wrap other keys.
    public static let wrap = AttributeType(CKA_WRAP)
    /// `CKA_UNWRAP`: the key may unwrap other keys.
    public static let unwrap = AttributeType(CKA_UNWRAP)
    /// `CKA_SIGN`: the key may sign.
    public static let sign = AttributeType(CKA_SIGN)
    /// `CKA_VERIFY`: the key may verify.
    public static let verify = AttributeType(CKA_VERIFY)
    /// `CKA_DERIVE`: the key may derive other keys.
    public static let derive = AttributeType(CKA_DERIVE)
    /// `CKA_MODULUS`: an RSA key's modulus.
    public static let modulus = AttributeType(CKA_MODULUS)
    /// `CKA_MODULUS_BITS`: the size of an RSA key to generate.
    public static let modulusBits = AttributeType(CKA_MODULUS_BITS)
    /// `CKA_PUBLIC_EXPONENT`: an RSA key's public exponent.
    public static let publicExponent = AttributeType(CKA_PUBLIC_EXPONENT)
    /// `CKA_PRIVATE_EXPONENT`: an RSA private key's secret exponent (never revealed for sensitive keys).
    public static let privateExponent = AttributeType(CKA_PRIVATE_EXPONENT)
    /// `CKA_VALUE_LEN`: a secret key's length in bytes.
    public static let valueLength = AttributeType(CKA_VALUE_LEN)
    /// `CKA_EXTRACTABLE`: the key may leave the token (wrapped).
    public static let extractable = AttributeType(CKA_EXTRACTABLE)
    /// `CKA_TRUSTED`: the key may wrap keys marked `CKA_WRAP_WITH_TRUSTED` (set by the security officer only).
    public static let trusted = AttributeType(CKA_TRUSTED)
    /// `CKA_WRAP_WITH_TRUSTED`: the key may be wrapped only by a `CKA_TRUSTED` key.
    public static let wrapWithTrusted = AttributeType(CKA_WRAP_WITH_TRUSTED)
    /// `CKA_NEVER_EXTRACTABLE`: the key has never been extractable.
    public static let neverExtractable = AttributeType(CKA_NEVER_EXTRACTABLE)
    /// `CKA_EC_PARAMS`: an EC key's curve (DER of its OID).
    public static let ecParams = AttributeType(CKA_EC_PARAMS)
    /// `CKA_EC_POINT`: an EC public key's point (DER OCTET STRING).
    public static let ecPoint = AttributeType(CKA_EC_POINT)
}
