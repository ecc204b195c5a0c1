/// RFC 4648 base32 (the standard alphabet `A–Z 2–7`), as used for OTP secrets.
public enum Base32 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// Encodes `bytes`.
    ///
    /// - Parameter padding: Whether to pad with `=` to a multiple of 8 characters (RFC 4648's form).
    ///   `otpauth://` URIs use no padding.
    public static func encode(_ bytes: some Sequence<UInt8>, padding: Bool = true) -> String {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = buffer << 8 | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                output.append(Self.alphabet[Int(buffer >> UInt32(bits) & 0x1F)])
            }
            buffer &= (1 << UInt32(bits)) - 1
        }
        if bits > 0 {
            output.append(Self.alphabet[Int(buffer << UInt32(5 - bits) & 0x1F)])
        }
        if padding {
            while output.count % 8 != 0 { output.append(UInt8(ascii: "=")) }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes base32 text as people type it: case-insensitive, spaces ignored, padding optional.
    ///
    /// - Returns: The bytes, or `nil` for any other character, `=` before the end, or a length
    ///   that no byte string encodes to (1, 3 or 6 characters past a multiple of 8).
    public static func decode(_ text: String) -> [UInt8]? {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        var count = 0
        var seenPadding = false
        for character in text.utf8 {
            if character == UInt8(ascii: " ") { continue }
            if character == UInt8(ascii: "=") {
                seenPadding = true
                continue
            }
            guard !seenPadding else { return nil }
            let value: UInt8
            switch character {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = character - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = character - UInt8(ascii: "a")
            case UInt8(ascii: "2")...UInt8(ascii: "7"): value = character - UInt8(ascii: "2") + 26
            default: return nil
            }
            buffer = buffer << 5 | UInt32(value)
            bits += 5
            count += 1
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
            buffer &= (1 << UInt32(bits)) - 1
        }
        guard ![1, 3, 6].contains(count % 8) else { return nil }
        return output
    }
}
