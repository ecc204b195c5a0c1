import SwiftASN1

/// `PKIFailureInfo` (RFC 3161 §2.4.2): why a time-stamp request was rejected, a named BIT STRING.
///
/// ```
/// PKIFailureInfo ::= BIT STRING { badAlg (0), badRequest (2), badDataFormat (5), timeNotAvailable (14),
///                                 unacceptedPolicy (15), unacceptedExtension (16), addInfoNotAvailable (17),
///                                 systemFailure (25) }
/// ```
/// DER encodes a named BIT STRING without trailing zero bits (X.690 §11.2.2): `badAlg` is `03 02 07 80`,
/// `systemFailure` is `03 05 06 00 00 00 40`.
public struct PKIFailureInfo: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) {
        self.rawValue = rawValue
    }

    /// The named bit `bit` (0 is the first, most significant bit of the first octet).
    init(bit: Int) {
        self.rawValue = 1 << UInt32(bit)
    }

    /// Unrecognized or unsupported algorithm identifier.
    public static let badAlg = PKIFailureInfo(bit: 0)
    /// Transaction not permitted or supported.
    public static let badRequest = PKIFailureInfo(bit: 2)
    /// The data submitted has the wrong format.
    public static let badDataFormat = PKIFailureInfo(bit: 5)
    /// The TSA's time source is not available.
    public static let timeNotAvailable = PKIFailureInfo(bit: 14)
    /// The requested TSA policy is not supported by the TSA.
    public static let unacceptedPolicy = PKIFailureInfo(bit: 15)
    /// The requested extension is not supported by the TSA.
    public static let unacceptedExtension = PKIFailureInfo(bit: 16)
    /// The additional information requested could not be understood or is not available.
    public static let addInfoNotAvailable = PKIFailureInfo(bit: 17)
    /// The request cannot be handled due to system failure.
    public static let systemFailure = PKIFailureInfo(bit: 25)

    static let names: [(Int, String)] = [
        (0, "badAlg"), (2, "badRequest"), (5, "badDataFormat"), (14, "timeNotAvailable"), (15, "unacceptedPolicy"),
        (16, "unacceptedExtension"), (17, "addInfoNotAvailable"), (25, "systemFailure"),
    ]

    /// The named bits set, e.g. `badAlg`, or `bit n` for an unnamed one.
    public var description: String {
        (0..<32).filter { self.rawValue & (1 << UInt32($0)) != 0 }
            .map { bit in Self.names.first { $0.0 == bit }?.1 ?? "bit \(bit)" }
            .joined(separator: ", ")
    }

    /// The DER BIT STRING (tag, length, unused-bit count, octets), trailing zero bits removed.
    public var derEncoded: [UInt8] {
        guard let highest = (0..<32).last(where: { self.rawValue & (1 << UInt32($0)) != 0 }) else {
            return [0x03, 0x01, 0x00]  // no bit set: an empty BIT STRING
        }
        let count = highest / 8 + 1
        var octets = [UInt8](repeating: 0, count: count)
        for bit in 0...highest where self.rawValue & (1 << UInt32(bit)) != 0 {
            octets[bit / 8] |= 0x80 >> UInt8(bit % 8)
        }
        let unused = UInt8(count * 8 - (highest + 1))
        return [0x03, UInt8(count + 1), unused] + octets
    }

    /// The bits of a DER `PKIFailureInfo`.
    ///
    /// - Throws: `ASN1Error` when `node` is not a DER BIT STRING of at most 32 bits.
    public init(derEncoded node: ASN1Node) throws {
        let bits = try ASN1BitString(derEncoded: node)
        guard bits.bytes.count <= 4 else { throw ASN1Error.invalidASN1Object(reason: "PKIFailureInfo longer than 32 bits") }
        var value: UInt32 = 0
        for (index, octet) in bits.bytes.enumerated() {
            for offset in 0..<8 where octet & (0x80 >> UInt8(offset)) != 0 {
                value |= 1 << UInt32(index * 8 + offset)
            }
        }
        self.rawValue = value
    }
}
