/// One-time codes sent by SMS: random digits the server generates, stores (with an expiry) and checks.
public enum SMSCode {
    /// A code of `digits` independent, uniformly random decimal digits.
    ///
    /// `UInt8.random(in:using:)` draws without modulo bias, from the system's secure generator.
    ///
    /// - Precondition: `digits ≥ 4`.
    public static func generate(digits: Int = 6) -> String {
        precondition(digits >= 4, "SMS codes need at least 4 digits")
        var generator = SystemRandomNumberGenerator()
        let characters = (0..<digits).map { _ in Character(String(UInt8.random(in: 0...9, using: &generator))) }
        return String(characters)
    }

    /// Whether the typed `code` equals the `expected` one, compared in constant time.
    public static func verify(code: String, expected: String) -> Bool {
        !expected.isEmpty && ConstantTime.equals(code, expected)
    }
}
