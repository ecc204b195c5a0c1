import Foundation

/// Time-based one-time passwords (RFC 6238) for authenticator apps: HOTP over the time step
/// `floor((unixTime − T0) / period)` with T0 = 0.
///
/// Pure logic: the caller stores each holder's last accepted step and passes it back, which is what
/// makes a code single-use (one TOTP authorisation per holder per step).
public enum TOTP {
    /// The standard period, in seconds.
    public static let defaultPeriod = 30

    /// The time step containing `time`; times before 1970 count as step 0.
    ///
    /// - Precondition: `period > 0`.
    public static func step(at time: Date, period: Int = Self.defaultPeriod) -> UInt64 {
        precondition(period > 0, "The TOTP period must be positive")
        let seconds = time.timeIntervalSince1970
        guard seconds > 0 else { return 0 }
        guard seconds < 1.8e19 else { return UInt64.max / UInt64(period) }
        return UInt64(seconds) / UInt64(period)
    }

    /// The code at `time`.
    ///
    /// - Precondition: `digits` is in ``HOTP/digitRange`` and `period > 0`.
    public static func code(
        secret: [UInt8],
        time: Date,
        digits: Int = 6,
        algorithm: OTPAlgorithm = .sha1,
        period: Int = Self.defaultPeriod
    ) -> String {
        HOTP.code(secret: secret, counter: Self.step(at: time, period: period), digits: digits, algorithm: algorithm)
    }

    /// The outcome of checking a code, for callers that report replays separately (audit, `otp_replayed`).
    public enum Verification: Sendable, Hashable {
        /// The code matches this step, which is later than the last used one: store it.
        case accepted(step: UInt64)
        /// The code matches only steps already used (or older): refused.
        case replayed(step: UInt64)
        /// The code matches no step in the window.
        case invalid
    }

    /// Checks `code` against the steps `current − drift … current + drift`, refusing every step
    /// `≤ lastUsedStep` (a replay, even of an older code still inside the window).
    ///
    /// Every candidate is computed and compared in constant time. If several steps match, the latest
    /// acceptable one is returned.
    ///
    /// - Parameters:
    ///   - code: What the holder typed: exactly `digits` ASCII digits, otherwise refused.
    ///   - time: The server's current time.
    ///   - lastUsedStep: The step of the last accepted code for this secret, or `nil` if none.
    ///   - drift: Steps of clock skew accepted on each side (1 = ±30 s).
    /// - Returns: The matched step, which the caller must store as the new `lastUsedStep`; `nil` if
    ///   the code is wrong or replayed.
    public static func verify(
        code: String,
        secret: [UInt8],
        time: Date,
        lastUsedStep: UInt64?,
        drift: UInt64 = 1,
        digits: Int = 6,
        algorithm: OTPAlgorithm = .sha1,
        period: Int = Self.defaultPeriod
    ) -> UInt64? {
        guard case .accepted(let step) = Self.check(
            code: code, secret: secret, time: time, lastUsedStep: lastUsedStep,
            drift: drift, digits: digits, algorithm: algorithm, period: period
        ) else { return nil }
        return step
    }

    /// Like ``verify(code:secret:time:lastUsedStep:drift:digits:algorithm:period:)`` but tells a
    /// replayed code from a wrong one.
    public static func check(
        code: String,
        secret: [UInt8],
        time: Date,
        lastUsedStep: UInt64?,
        drift: UInt64 = 1,
        digits: Int = 6,
        algorithm: OTPAlgorithm = .sha1,
        period: Int = Self.defaultPeriod
    ) -> Verification {
        guard HOTP.isWellFormed(code, digits: digits), period > 0 else { return .invalid }
        let current = Self.step(at: time, period: period)
        let first = current >= drift ? current - drift : 0
        let last = HOTP.addingClamped(current, drift)
        var accepted: UInt64?
        var replayed: UInt64?
        var candidate = first
        while true {
            let expected = HOTP.code(secret: secret, counter: candidate, digits: digits, algorithm: algorithm)
            if ConstantTime.equals(expected, code) {
                if let lastUsedStep, candidate <= lastUsedStep {
                    replayed = candidate
                } else {
                    accepted = candidate
                }
            }
            if candidate == last { break }
            candidate += 1
        }
        if let accepted { return .accepted(step: accepted) }
        if let replayed { return .replayed(step: replayed) }
        return .invalid
    }

    /// A new random secret (20 bytes by default: the SHA-1 output size RFC 4226 recommends).
    ///
    /// - Precondition: `bytes ≥ 16` (RFC 4226's minimum of 128 bits).
    public static func generateSecret(bytes: Int = 20) -> [UInt8] {
        precondition(bytes >= 16, "OTP secrets need at least 128 bits")
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// The provisioning URI for authenticator apps (the QR code's content), in the Key Uri Format:
    /// `otpauth://totp/Issuer:account?secret=BASE32&issuer=Issuer&algorithm=SHA1&digits=6&period=30`.
    ///
    /// Issuer and account are percent-encoded (everything but RFC 3986's unreserved characters,
    /// so a space is `%20` and a colon inside either is `%3A`); the secret is unpadded base32.
    public static func otpauthURI(
        secret: [UInt8],
        issuer: String,
        account: String,
        digits: Int = 6,
        algorithm: OTPAlgorithm = .sha1,
        period: Int = Self.defaultPeriod
    ) -> String {
        let issuerEncoded = Self.percentEncode(issuer)
        let label = "\(issuerEncoded):\(Self.percentEncode(account))"
        return "otpauth://totp/\(label)?secret=\(Base32.encode(secret, padding: false))"
            + "&issuer=\(issuerEncoded)&algorithm=\(algorithm.uriName)&digits=\(digits)&period=\(period)"
    }

    /// Percent-encodes the UTF-8 bytes of `text`, keeping only `A–Z a–z 0–9 - . _ ~`.
    static func percentEncode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var output: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                output.append(byte)
            default:
                output.append(UInt8(ascii: "%"))
                output.append(hex[Int(byte >> 4)])
                output.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
