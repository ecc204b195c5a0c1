import CSCProtocol
import Foundation

/// `Base64Text`, the one lenient base64 decoder (CSC hashes, `signAlgoParams`, OCSP GET requests, client
/// signatures). Checked, for the input as text: the fast ASCII path and Foundation agree wherever both decode, and
/// the fast path's output has the length the input implies; for the input as bytes: encoding then decoding (standard,
/// URL-safe, unpadded) gives the bytes back.
enum Base64Target {
    static let target = FuzzTarget(name: "base64", summary: "Base64Text lenient decoding (both alphabets, padding optional)") {
        { bytes in Self.run(bytes) }
    }

    static func run(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let lenient = Base64Text.decodeLenient(text)
        if let fast = Base64Text.decodeASCII(text) {
            FuzzCheck.require(lenient == fast, "decodeLenient differs from decodeASCII")
            // The characters of the alphabet, blanks and padding removed: the output is 3/4 of them.
            let symbols = text.utf8.filter { $0 != UInt8(ascii: "=") && !Self.isBlank($0) }.count
            FuzzCheck.require(fast.count == symbols * 3 / 4, "decodeASCII returned \(fast.count) bytes for \(symbols) symbols")
            // Foundation, given the same symbols in the standard alphabet with padding, decodes to the same bytes or
            // refuses (it may refuse non-zero trailing bits, which the fast path ignores).
            var standard = String(decoding: text.utf8.filter { $0 != UInt8(ascii: "=") && !Self.isBlank($0) }, as: UTF8.self)
                .replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
            if let foundation = Data(base64Encoded: standard) {
                FuzzCheck.require([UInt8](foundation) == fast, "decodeASCII differs from Foundation for \(standard.debugDescription)")
            }
        }

        guard !bytes.isEmpty else { return }
        let encoded = Base64Text.encode(bytes)
        let url = encoded.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        let unpadded = String(url.prefix { $0 != "=" })
        for form in [encoded, url, unpadded, " \(encoded)\n"] {
            FuzzCheck.require(Base64Text.decodeLenient(form) == bytes, "decodeLenient(\(form.debugDescription)) does not give the encoded bytes back")
            FuzzCheck.require(Base64Text.decodeASCII(form) == bytes, "decodeASCII(\(form.debugDescription)) does not give the encoded bytes back")
        }
    }

    /// The ASCII blanks `decodeASCII` trims (space, tab, LF, VT, FF, CR).
    static func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }
}
