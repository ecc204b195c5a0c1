import Crypto
import Foundation
import PKCS11

/// Seals the OTP seeds the database holds (app and SMS devices, hardware token seeds, pending devices), so that a
/// copy of the database alone gives no one the holders' second factor.
///
/// The sealing key never exists outside this process's memory and the token: it is HMAC-SHA-256, computed in the
/// token with a non-extractable secret key (`seedKeyID`), of a fixed label. Each seed is sealed with AES-256-GCM
/// under a random nonce, and the record it belongs to (table and holder, or token serial) is authenticated with it,
/// so a sealed seed copied into another holder's row does not open.
///
/// Sealed form: `0x01 ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.
///
/// `@unchecked Sendable`: `SymmetricKey` is an immutable value that swift-crypto does not mark `Sendable`.
public struct SeedVault: @unchecked Sendable {
    /// The token key's id when none is configured.
    public static let defaultKeyID = "sigillo-seed-key"
    private static let label = Array("sigillo seed vault v1".utf8)
    private static let version: UInt8 = 1

    private let key: SymmetricKey
    /// Identifies the key without revealing it: the database keeps it to refuse a different token's key.
    public let keyCheck: [UInt8]

    /// A vault with a key held in software (tests and tools without a token).
    public init(key: SymmetricKey) {
        self.key = key
        self.keyCheck = Array(HMAC<SHA256>.authenticationCode(for: Array("sigillo seed vault key check".utf8), using: key))
    }

    /// The vault of `token`: derives the sealing key with the token's secret key `keyID`, generating that key first
    /// when the token has none and `create` allows it (first start: the database has sealed nothing yet).
    public static func open(token: Token, keyID: String = Self.defaultKeyID, create: Bool = true) async throws -> SeedVault {
        let material: [UInt8]
        do {
            material = try await token.hmacSHA256(keyID: keyID, data: Self.label)
        } catch let error as PKCS11Error where error.code == .keyNotFound {
            guard create else {
                throw SigilloError(.internalError, "the database was sealed with a seed key '\(keyID)' that this token does not have: wrong token or database")
            }
            try await token.generateHMACKey(id: keyID)
            material = try await token.hmacSHA256(keyID: keyID, data: Self.label)
        }
        return SeedVault(key: SymmetricKey(data: material))
    }

    /// A keyed digest of a short secret (the SHA-256 of an SMS code) for the record named by `context`, to keep instead
    /// of the plain digest: a copy of the database alone would reverse that by trying the million six-digit codes.
    ///
    /// HMAC-SHA-256 under a key of its own, derived from the sealing key; `context` and `secret` are separated by a zero byte.
    public func digest(_ secret: [UInt8], context: String) -> [UInt8] {
        let key = SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Array("sigillo seed vault digest key".utf8), using: self.key))
        return Array(HMAC<SHA256>.authenticationCode(for: Array(context.utf8) + [0] + secret, using: key))
    }

    /// Seals `secret` for the record named by `context`.
    public func seal(_ secret: [UInt8], context: String) throws -> Data {
        let box = try AES.GCM.seal(secret, using: self.key, authenticating: Array(context.utf8))
        guard let combined = box.combined else { throw SigilloError(.internalError, "AES-GCM gave no combined form") }
        return Data([Self.version]) + combined
    }

    /// Opens a seed sealed for `context`.
    ///
    /// - Throws: `internalError` when the bytes were not sealed by this vault for this record.
    public func open(_ sealed: Data, context: String) throws -> [UInt8] {
        guard sealed.first == Self.version, sealed.count >= 1 + 12 + 16 else {
            throw SigilloError(.internalError, "an OTP seed in the database is not sealed")
        }
        do {
            let box = try AES.GCM.SealedBox(combined: sealed.dropFirst())
            return Array(try AES.GCM.open(box, using: self.key, authenticating: Array(context.utf8)))
        } catch {
            throw SigilloError(.internalError, "an OTP seed in the database does not open with this token's seed key (\(context))")
        }
    }
}
