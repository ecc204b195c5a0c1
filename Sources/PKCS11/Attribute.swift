internal import CPKCS11

/// A PKCS#11 attribute for templates (`C_FindObjects`, key generation): a type and its value's bytes.
public struct Attribute: Hashable, Sendable {
    /// The attribute type (`CKA_...`).
    public let type: AttributeType
    /// The value as the module reads it: `CK_BBOOL` is one byte, `CK_ULONG` native-endian, strings UTF-8.
    public let value: [UInt8]

    /// An attribute with raw value bytes.
    public init(type: AttributeType, value: [UInt8]) {
        self.type = type
        self.value = value
    }

    /// A `CK_BBOOL` attribute, e.g. `.bool(.sensitive, true)`.
    public static func bool(_ type: AttributeType, _ value: Bool) -> Attribute {
        Attribute(type: type, value: [value ? 1 : 0])
    }

    /// A `CK_ULONG` attribute, e.g. `.ulong(.modulusBits, 2048)`.
    public static func ulong(_ type: AttributeType, _ value: UInt) -> Attribute {
        Attribute(type: type, value: withUnsafeBytes(of: CK_ULONG(value)) { Array($0) })
    }

    /// A byte-string attribute, e.g. `.bytes(.id, Array(id.utf8))`.
    public static func bytes(_ type: AttributeType, _ value: [UInt8]) -> Attribute {
        Attribute(type: type, value: value)
    }

    /// The `CKA_CLASS` attribute, e.g. `.objectClass(.privateKey)`.
    public static func objectClass(_ objectClass: ObjectClass) -> Attribute {
        .ulong(.class, objectClass.rawValue)
    }

    /// Lays out `template` as a `CK_ATTRIBUTE` array whose values live for the duration of `body`.
    static func withTemplate<T>(_ template: [Attribute], _ body: (UnsafeMutablePointer<CK_ATTRIBUTE>, CK_ULONG) throws(PKCS11Error) -> T) throws(PKCS11Error) -> T {
        let total = template.reduce(0) { $0 + $1.value.count }
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 8)
        defer { storage.deallocate() }
        let attributes = UnsafeMutablePointer<CK_ATTRIBUTE>.allocate(capacity: max(template.count, 1))
        defer { attributes.deallocate() }
        var offset = 0
        for (index, attribute) in template.enumerated() {
            let destination = storage.baseAddress! + offset
            attribute.value.withUnsafeBytes { source in
                if source.count > 0 { destination.copyMemory(from: source.baseAddress!, byteCount: source.count) }
            }
            attributes[index] = CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(attribute.type.rawValue), pValue: destination, ulValueLen: CK_ULONG(attribute.value.count))
            offset += attribute.value.count
        }
        return try body(attributes, CK_ULONG(template.count))
    }
}
