import CArgon2
import Foundation
import Synchronization

/// Hashes and verifies passwords with Argon2id (RFC 9106) through libargon2.
///
/// Hashes are PHC strings, `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`, with a fresh 16-byte
/// random salt and a 32-byte output. The parameters travel in the string, so ``parameters`` can
/// be raised later without breaking stored hashes; ``needsRehash(_:)`` tells when to upgrade.
///
/// Passwords are normalised to Unicode NFKC before hashing (NIST SP 800-63B §5.1.1.2), so the same
/// password typed on different keyboards (composed or decomposed accents) gives the same hash.
///
/// - Important: ``hash(_:)`` and ``verify(_:encoded:)`` are deliberately slow (tens of
///   milliseconds of CPU and ``Argon2Parameters/memoryKiB`` of memory) and block the calling
///   thread. Never call them on Swift's cooperative pool or a NIO event loop: run them on a
///   dedicated, bounded thread pool (which also caps the memory used by concurrent logins).
public struct PasswordHasher: Sendable {
    /// The parameters of new hashes; stored hashes with lower ones need re-hashing.
    public let parameters: Argon2Parameters
    /// Bytes of random salt per hash.
    public static let saltLength = 16
    /// Bytes of Argon2 output per hash.
    public static let hashLength = 32

    /// Argon2id verifications this hasher (and its copies) ran: the proof, without a clock, that unknown and locked
    /// accounts cost the same work as known ones.
    public var verifications: Int { self.counter.value.load(ordering: .relaxed) }
    private let counter = Counter()

    private final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Creates a hasher for new hashes with `parameters` (``Argon2Parameters/default`` unless measured otherwise).
    public init(parameters: Argon2Parameters = .default) {
        self.parameters = parameters
    }

    /// A hash of a random password with this hasher's parameters, verified against when a username is unknown (or
    /// locked) so that every answer costs one Argon2id verification of the same weight. Made once per parameters.
    var decoy: String {
        let parameters = self.parameters
        return Self.decoys.withLock { decoys in
            if let decoy = decoys[parameters] { return decoy }
            let decoy = (try? PasswordHasher(parameters: parameters).hash(Secrets.token())) ?? ""
            decoys[parameters] = decoy
            return decoy
        }
    }
    private static let decoys = Mutex<[Argon2Parameters: String]>([:])

    /// Hashes `password` with a fresh random salt.
    ///
    /// Blocks the calling thread for the whole Argon2 computation; see the type's documentation.
    ///
    /// - Parameter password: The password, any length (including empty); policy is ``PasswordPolicy``'s job.
    /// - Returns: The PHC string to store.
    /// - Throws: ``SigilloError/Code/internalError`` if the parameters are invalid or libargon2 fails.
    public func hash(_ password: String) throws(SigilloError) -> String {
        guard self.parameters.isValid else {
            throw SigilloError(.internalError, "Invalid Argon2 parameters \(self.parameters).")
        }
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<Self.saltLength).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        guard let output = Self.argon2id(password: password, salt: salt, parameters: self.parameters, length: Self.hashLength) else {
            throw SigilloError(.internalError, "Password hashing failed.")
        }
        return Argon2EncodedHash(parameters: self.parameters, salt: salt, hash: output).encoded
    }

    /// Whether `password` matches the stored PHC string `encoded`.
    ///
    /// The stored hash's own parameters are used (so hashes made with older parameters still verify),
    /// within ``Argon2Parameters/verificationLimit``. The final comparison is constant-time.
    /// A malformed, non-Argon2id or over-limit `encoded` string gives `false`; this never traps.
    ///
    /// Blocks the calling thread for the whole Argon2 computation; see the type's documentation.
    public func verify(_ password: String, encoded: String) -> Bool {
        self.counter.value.add(1, ordering: .relaxed)
        guard let stored = Argon2EncodedHash(encoded),
              stored.parameters.isAtMost(Argon2Parameters.verificationLimit),
              let computed = Self.argon2id(password: password, salt: stored.salt, parameters: stored.parameters, length: stored.hash.count)
        else { return false }
        return ConstantTime.equals(computed, stored.hash)
    }

    /// Whether a stored hash should be replaced by a new one at the next successful login:
    /// its memory, iterations or parallelism is below ``parameters``, its salt or output is shorter
    /// than today's, or it cannot be parsed at all.
    public func needsRehash(_ encoded: String) -> Bool {
        guard let stored = Argon2EncodedHash(encoded) else { return true }
        return !stored.parameters.isAtLeast(self.parameters)
            || stored.salt.count < Self.saltLength
            || stored.hash.count < Self.hashLength
    }

    /// The parameters a stored PHC string was made with, or `nil` if it is not a valid Argon2id hash.
    public static func parameters(of encoded: String) -> Argon2Parameters? {
        Argon2EncodedHash(encoded)?.parameters
    }

    /// Raw Argon2id over the NFKC-normalised UTF-8 password; the password copy is zeroed afterwards.
    private static func argon2id(password: String, salt: [UInt8], parameters: Argon2Parameters, length: Int) -> [UInt8]? {
        var passwordBytes = Array(password.precomposedStringWithCompatibilityMapping.utf8)
        defer {
            for index in passwordBytes.indices { passwordBytes[index] = 0 }
        }
        var output = [UInt8](repeating: 0, count: length)
        let status = passwordBytes.withUnsafeBytes { passwordBuffer in
            salt.withUnsafeBytes { saltBuffer in
                output.withUnsafeMutableBytes { outputBuffer in
                    argon2id_hash_raw(
                        parameters.iterations, parameters.memoryKiB, parameters.parallelism,
                        passwordBuffer.baseAddress, passwordBuffer.count,
                        saltBuffer.baseAddress, saltBuffer.count,
                        outputBuffer.baseAddress, outputBuffer.count
                    )
                }
            }
        }
        guard status == ARGON2_OK.rawValue else { return nil }
        return output
    }
}
