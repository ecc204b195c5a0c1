/// HMAC-based one-time passwords (RFC 4226), as shown by hardware tokens.
///
/// Pure logic: the caller stores each device's counter (the value *after* the last accepted code).
public enum HOTP {
    /// Allowed code lengths.
    public static let digitRange = 6...8
    /// Default look-ahead: how many counter values past the stored one are tried.
    public static let defaultLookAhead: UInt64 = 10
    /// Default resynchronisation window.
    public static let defaultResyncWindow: UInt64 = 1000

    /// The code for `counter`: HMAC(secret, counter as 8 big-endian bytes), dynamic truncation,
    /// modulo 10^digits, left-padded with zeros.
    ///
    /// - Precondition: `digits` is in ``digitRange`` (a configuration error, not user input).
    public static func code(secret: [UInt8], counter: UInt64, digits: Int = 6, algorithm: OTPAlgorithm = .sha1) -> String {
        precondition(Self.digitRange.contains(digits), "OTP codes have 6 to 8 digits")
        let message = (0..<8).map { UInt8(truncatingIfNeeded: counter >> (56 - 8 * UInt64($0))) }
        let mac = algorithm.authenticationCode(key: secret, message: message)
        let offset = Int(mac[mac.count - 1] & 0x0F)
        let binary = UInt32(mac[offset] & 0x7F) << 24
            | UInt32(mac[offset + 1]) << 16
            | UInt32(mac[offset + 2]) << 8
            | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        let value = String(binary % modulus)
        return String(repeating: "0", count: digits - value.count) + value
    }

    /// Checks `code` against counters `counter … counter + lookAhead`.
    ///
    /// Every candidate is computed and compared in constant time; the first match wins.
    ///
    /// - Parameters:
    ///   - code: What the holder typed: exactly `digits` ASCII digits, otherwise refused.
    ///   - counter: The stored counter (the next value the device is expected to show).
    ///   - lookAhead: How many counters past `counter` are also accepted (presses not sent).
    /// - Returns: The counter to store next (the matched counter + 1), or `nil` if no match.
    public static func verify(
        code: String,
        secret: [UInt8],
        counter: UInt64,
        lookAhead: UInt64 = Self.defaultLookAhead,
        digits: Int = 6,
        algorithm: OTPAlgorithm = .sha1
    ) -> UInt64? {
        guard Self.isWellFormed(code, digits: digits) else { return nil }
        let last = Self.addingClamped(counter, lookAhead)
        var matched: UInt64?
        var candidate = counter
        while true {
            let expected = Self.code(secret: secret, counter: candidate, digits: digits, algorithm: algorithm)
            if ConstantTime.equals(expected, code), matched == nil { matched = candidate }
            if candidate == last { break }
            candidate += 1
        }
        guard let matched, matched < UInt64.max else { return nil }
        return matched + 1
    }

    /// Resynchronises a device that drifted far ahead: the holder types two consecutive codes.
    ///
    /// Looks for `c` in `counter … counter + window` with `code(c) == code1` and `code(c + 1) == code2`.
    /// Two codes make a false match in a large window negligible (about `window / 10^(2·digits)`).
    ///
    /// - Returns: The counter to store next (`c + 2`), or `nil` if no such pair is found.
    public static func resynchronize(
        code1: String,
        code2: String,
        secret: [UInt8],
        counter: UInt64,
        window: UInt64 = Self.defaultResyncWindow,
        digits: Int = 6,
        algorithm: OTPAlgorithm = .sha1
    ) -> UInt64? {
        guard Self.isWellFormed(code1, digits: digits), Self.isWellFormed(code2, digits: digits) else { return nil }
        let last = Self.addingClamped(counter, window)
        guard last < UInt64.max - 1 else { return nil }
        var matched: UInt64?
        var previous = Self.code(secret: secret, counter: counter, digits: digits, algorithm: algorithm)
        var candidate = counter
        while true {
            let next = Self.code(secret: secret, counter: candidate + 1, digits: digits, algorithm: algorithm)
            let first = ConstantTime.equals(previous, code1)
            let second = ConstantTime.equals(next, code2)
            if first && second && matched == nil { matched = candidate }
            if candidate == last { break }
            previous = next
            candidate += 1
        }
        return matched.map { $0 + 2 }
    }

    /// Whether `code` is exactly `digits` ASCII digits (and `digits` is allowed).
    static func isWellFormed(_ code: String, digits: Int) -> Bool {
        Self.digitRange.contains(digits)
            && code.utf8.count == digits
            && code.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    static func addingClamped(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? UInt64.max : sum
    }
}
