/// A parsed PHC string `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>` (base64 without padding).
///
/// Parsing is strict and never traps: anything else, including other Argon2 variants, other
/// versions, out-of-range numbers or bad base64, gives `nil`.
struct Argon2EncodedHash: Sendable, Hashable {
    var parameters: Argon2Parameters
    var salt: [UInt8]
    var hash: [UInt8]

    /// Shortest salt and output libargon2 accepts, and a sanity ceiling for both.
    static let minimumSaltLength = 8
    static let minimumHashLength = 4
    static let maximumLength = 1024

    init(parameters: Argon2Parameters, salt: [UInt8], hash: [UInt8]) {
        self.parameters = parameters
        self.salt = salt
        self.hash = hash
    }

    init?(_ encoded: String) {
        // "", "argon2id", "v=19", "m=…,t=…,p=…", salt, hash
        let fields = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard fields.count == 6, fields[0].isEmpty, fields[1] == "argon2id", fields[2] == "v=19" else {
            return nil
        }
        let costs = fields[3].split(separator: ",", omittingEmptySubsequences: false)
        guard costs.count == 3,
              let memory = Self.number(costs[0], key: "m"),
              let iterations = Self.number(costs[1], key: "t"),
              let parallelism = Self.number(costs[2], key: "p")
        else { return nil }
        let parameters = Argon2Parameters(memoryKiB: memory, iterations: iterations, parallelism: parallelism)
        guard parameters.isValid,
              let salt = Self.decodeBase64(fields[4]),
              let hash = Self.decodeBase64(fields[5]),
              (Self.minimumSaltLength...Self.maximumLength).contains(salt.count),
              (Self.minimumHashLength...Self.maximumLength).contains(hash.count)
        else { return nil }
        self.parameters = parameters
        self.salt = salt
        self.hash = hash
    }

    /// The PHC string, as libargon2 writes it.
    var encoded: String {
        "$argon2id$v=19$\(self.parameters)$\(Self.encodeBase64(self.salt))$\(Self.encodeBase64(self.hash))"
    }

    /// Parses `key=digits` into a `UInt32`; no sign, no leading zeros, no overflow.
    private static func number(_ field: Substring, key: Character) -> UInt32? {
        let utf8 = Array(field.utf8)
        guard utf8.count >= 3, utf8.count <= 12, utf8[0] == key.asciiValue, utf8[1] == UInt8(ascii: "=") else {
            return nil
        }
        let digits = utf8[2...]
        guard digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              digits.count == 1 || digits.first != UInt8(ascii: "0")
        else { return nil }
        var value: UInt64 = 0
        for digit in digits {
            value = value * 10 + UInt64(digit - UInt8(ascii: "0"))
            guard value <= UInt64(UInt32.max) else { return nil }
        }
        return UInt32(value)
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Standard base64 without padding, as in PHC strings.
    static func encodeBase64(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let remaining = bytes.count - index
            let b0 = UInt32(bytes[index])
            let b1 = remaining > 1 ? UInt32(bytes[index + 1]) : 0
            let b2 = remaining > 2 ? UInt32(bytes[index + 2]) : 0
            let group = b0 << 16 | b1 << 8 | b2
            output.append(Self.alphabet[Int(group >> 18 & 0x3F)])
            output.append(Self.alphabet[Int(group >> 12 & 0x3F)])
            if remaining > 1 { output.append(Self.alphabet[Int(group >> 6 & 0x3F)]) }
            if remaining > 2 { output.append(Self.alphabet[Int(group & 0x3F)]) }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes standard base64 without padding; rejects padding, other characters, impossible
    /// lengths and non-zero trailing bits (so every hash has exactly one spelling).
    static func decodeBase64(_ text: Substring) -> [UInt8]? {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        var count = 0
        for character in text.utf8 {
            let value: UInt8
            switch character {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = character - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = character - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "/"): value = 63
            default: return nil
            }
            buffer = buffer << 6 | UInt32(value)
            bits += 6
            count += 1
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
                buffer &= (1 << UInt32(bits)) - 1
            }
        }
        guard count % 4 != 1, buffer == 0 else { return nil }
        return output
    }
}
