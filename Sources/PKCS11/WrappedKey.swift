/// A holder's private key as the database keeps it: wrapped under the token's key-encryption key (KEK), bound to its
/// credential, with its public key beside it.
///
/// The blob is what `C_WrapKey` returned (PKCS#8 inside RFC 5649 with SoftHSM). `binding` is HMAC-SHA-256, computed in
/// the token with the KEK's companion key (`<kek id>-binding`, sign-only, non-extractable), over the credential id, the
/// algorithm, the mechanism, the public key and the blob (`bindingData`). It is checked in the token before every
/// unwrap, so an altered blob, a blob copied into another credential's row, or one from another token is refused before
/// the token ever parses it. The whole wrapped key is the key's version: a worker uses its cached unwrapped handle only
/// while the credential's row, read for that very request, still carries the same wrapped key.
///
/// Stored form (`encoded`, the `wrapped_key` column): `0x01 ‖ len ‖ algorithm ‖ mechanism (8, big-endian) ‖ len ‖ iv ‖
/// len (4) ‖ blob ‖ binding (32)`; the public key (SubjectPublicKeyInfo, DER) is a column of its own.
public struct WrappedKey: Hashable, Sendable {
    public let algorithm: KeyAlgorithm
    public let mechanism: WrapMechanism
    public let blob: [UInt8]
    public let binding: [UInt8]
    /// SubjectPublicKeyInfo, DER.
    public let publicKey: [UInt8]

    static let version: UInt8 = 1
    static let bindingLength = 32

    init(algorithm: KeyAlgorithm, mechanism: WrapMechanism, blob: [UInt8], binding: [UInt8], publicKey: [UInt8]) {
        self.algorithm = algorithm
        self.mechanism = mechanism
        self.blob = blob
        self.binding = binding
        self.publicKey = publicKey
    }

    /// Reads the stored form.
    ///
    /// - Throws: `wrappedKeyInvalid` when `encoded` is not a wrapped key of a known algorithm.
    public init(encoded: [UInt8], publicKey: [UInt8]) throws(PKCS11Error) {
        var reader = ByteReader(encoded)
        guard reader.byte() == Self.version, let algorithmLength = reader.byte(), let algorithmBytes = reader.bytes(Int(algorithmLength)),
              let algorithm = KeyAlgorithm(rawValue: String(decoding: algorithmBytes, as: UTF8.self)),
              let mechanism = reader.integer(8), let ivLength = reader.byte(), let iv = reader.bytes(Int(ivLength)),
              let blobLength = reader.integer(4), let blob = reader.bytes(Int(blobLength)), let binding = reader.bytes(Self.bindingLength),
              reader.isAtEnd, !blob.isEmpty, !publicKey.isEmpty
        else {
            throw PKCS11Error(.wrappedKeyInvalid, detail: "the stored wrapped key is malformed")
        }
        self.init(algorithm: algorithm, mechanism: WrapMechanism(type: UInt(mechanism), iv: iv), blob: blob, binding: binding, publicKey: publicKey)
    }

    /// The stored form (everything but the public key).
    public var encoded: [UInt8] {
        var out: [UInt8] = [Self.version]
        let algorithm = Array(self.algorithm.rawValue.utf8)
        out.append(UInt8(algorithm.count))
        out += algorithm
        out += Self.bigEndian(UInt64(self.mechanism.type), bytes: 8)
        out.append(UInt8(self.mechanism.iv.count))
        out += self.mechanism.iv
        out += Self.bigEndian(UInt64(self.blob.count), bytes: 4)
        out += self.blob
        out += self.binding
        return out
    }

    /// What the binding MAC covers: a label, the credential id, the algorithm, the mechanism and IV, the public key
    /// and the blob, each length-prefixed so no two inputs share an encoding.
    static func bindingData(credential: String, algorithm: KeyAlgorithm, mechanism: WrapMechanism, publicKey: [UInt8], blob: [UInt8]) -> [UInt8] {
        var out = Array("sigillo wrapped holder key v1".utf8)
        for field in [Array(credential.utf8), Array(algorithm.rawValue.utf8), Self.bigEndian(UInt64(mechanism.type), bytes: 8), mechanism.iv, publicKey, blob] {
            out += Self.bigEndian(UInt64(field.count), bytes: 4)
            out += field
        }
        return out
    }

    private static func bigEndian(_ value: UInt64, bytes: Int) -> [UInt8] {
        (0..<bytes).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }
}

/// Reads the stored form front to back; every read answers nil past the end.
private struct ByteReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { self.offset == self.bytes.count }

    mutating func byte() -> UInt8? { self.bytes(1)?.first }

    mutating func bytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, self.bytes.count - self.offset >= count else { return nil }
        defer { self.offset += count }
        return Array(self.bytes[self.offset..<(self.offset + count)])
    }

    mutating func integer(_ count: Int) -> UInt64? {
        guard let bytes = self.bytes(count) else { return nil }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// Equal-length byte strings compared in time independent of where they differ.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices { difference |= a[index] ^ b[index] }
    return difference == 0
}
