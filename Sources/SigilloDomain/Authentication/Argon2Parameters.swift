/// The cost of an Argon2id password hash.
///
/// The parameters are stored in every encoded hash (`$argon2id$v=19$m=…,t=…,p=…$…`), so they can be
/// raised later: old hashes still verify with their own parameters and
/// ``PasswordHasher/needsRehash(_:)`` tells the caller to re-hash at the next successful login.
public struct Argon2Parameters: Sendable, Hashable, CustomStringConvertible {
    /// Memory per hash, in KiB (Argon2's `m`). At least `8 × parallelism`.
    public var memoryKiB: UInt32
    /// Passes over the memory (Argon2's `t`). At least 1.
    public var iterations: UInt32
    /// Lanes (Argon2's `p`). At least 1; lanes are computed on one thread by libargon2's reference build.
    public var parallelism: UInt32

    /// Creates a parameter set; ``isValid`` tells whether libargon2 accepts it.
    public init(memoryKiB: UInt32, iterations: UInt32, parallelism: UInt32) {
        self.memoryKiB = memoryKiB
        self.iterations = iterations
        self.parallelism = parallelism
    }

    /// The default: m = 19456 KiB (19 MiB), t = 2, p = 1, OWASP's recommended minimum for Argon2id.
    ///
    /// Measured on the 2-core development machine at roughly 30–40 ms per hash or verification
    /// (one core busy, 19 MiB allocated for the duration). Raise it when hardware allows:
    /// existing hashes keep verifying and ``PasswordHasher/needsRehash(_:)`` flags them.
    public static let `default` = Argon2Parameters(memoryKiB: 19_456, iterations: 2, parallelism: 1)

    /// The ceiling accepted when *verifying* a stored hash, so a tampered or hostile encoded string
    /// cannot make the server allocate gigabytes or spin for minutes: 1 GiB, 64 passes, 16 lanes.
    public static let verificationLimit = Argon2Parameters(memoryKiB: 1 << 20, iterations: 64, parallelism: 16)

    /// Whether libargon2 accepts these parameters (`p ≥ 1`, `t ≥ 1`, `m ≥ 8p`).
    public var isValid: Bool {
        self.parallelism >= 1 && self.parallelism <= 0x00FF_FFFF
            && self.iterations >= 1
            && UInt64(self.memoryKiB) >= 8 * UInt64(self.parallelism)
    }

    /// Whether every parameter is at least the corresponding one in `other`.
    public func isAtLeast(_ other: Argon2Parameters) -> Bool {
        self.memoryKiB >= other.memoryKiB && self.iterations >= other.iterations && self.parallelism >= other.parallelism
    }

    /// Whether every parameter is at most the corresponding one in `other`.
    public func isAtMost(_ other: Argon2Parameters) -> Bool {
        self.memoryKiB <= other.memoryKiB && self.iterations <= other.iterations && self.parallelism <= other.parallelism
    }

    /// The PHC form, `m=19456,t=2,p=1`.
    public var description: String { "m=\(self.memoryKiB),t=\(self.iterations),p=\(self.parallelism)" }
}
