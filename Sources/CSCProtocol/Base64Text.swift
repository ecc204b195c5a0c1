import Foundation

/// A fast base64 decoder for the common case, shared by the server's and the client's lenient decoders.
public enum Base64Text {
    /// Decodes standard or URL-safe base64, with or without padding; nil for anything else.
    public static func decodeLenient(_ text: String) -> [UInt8]? {
        if let bytes = Base64Text.decodeASCII(text) { return bytes }
        var normalized = text.trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while normalized.hasSuffix("=") { normalized.removeLast() }
        guard !normalized.isEmpty, normalized.count % 4 != 1 else { return nil }
        normalized += String(repeating: "=", count: (4 - normalized.count % 4) % 4)
        return Data(base64Encoded: normalized).map { [UInt8]($0) }
    }

    /// Standard base64 with padding.
    public static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// Plain ASCII base64 of either alphabet (`+/` or `-_`), ASCII blanks around it, padding optional.
    /// Nil when anything else is in the text: callers then decide with their own (Foundation) rules, so this
    /// only makes the common case fast (signHash decodes every hash, the client every signature).
    public static func decodeASCII(_ text: String) -> [UInt8]? {
        var input = Array(text.utf8)[...]
        while let first = input.first, first == 0x20 || (0x09...0x0D).contains(first) { input.removeFirst() }
        while let last = input.last, last == 0x20 || (0x09...0x0D).contains(last) { input.removeLast() }
        while input.last == UInt8(ascii: "=") { input.removeLast() }
        guard !input.isEmpty, input.count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in input {
            let value = self.alphabet[Int(byte)]
            guard value < 64 else { return nil }
            buffer = ((buffer << 6) | UInt32(value)) & 0xFF_FFFF
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        return output
    }

    /// Byte → 6-bit value for both alphabets (`+/` and `-_`); 255 for anything else.
    private static let alphabet: [UInt8] = {
        var table = [UInt8](repeating: 255, count: 256)
        for (index, byte) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { table[Int(byte)] = UInt8(index) }
        table[Int(UInt8(ascii: "-"))] = 62
        table[Int(UInt8(ascii: "_"))] = 63
        return table
    }()
}
