import Crypto
import Foundation

/// A signed statement that the audit chain's record `sequence` had hash `hash`, made with the audit key in the token
/// (ECDSA P-384 over SHA-384). It is itself appended to the chain, as a record with action `audit.checkpoint`, whose
/// details carry it: `seq=… hash=… reason=… key=… signature=…`.
///
/// A chain rewritten from some record on (every later hash recomputed, `sqlite_sequence` adjusted) no longer has the
/// hashes a later checkpoint signed, and a new signature needs the token.
public struct AuditCheckpoint: Sendable, Equatable {
    /// The action of checkpoint records.
    public static let action = "audit.checkpoint"
    /// The actor of checkpoint records: the service itself.
    public static let actor = "sigillo"

    /// The record signed (the chain's head when the checkpoint was made).
    public var sequence: Int64
    /// That record's hash.
    public var hash: String
    /// Why it was made: `start`, `records`, `interval`, `shutdown`, `operator`.
    public var reason: String
    /// The SHA-256 of the signing key's SubjectPublicKeyInfo, hex: names the key (verification uses the token's own).
    public var key: String
    /// ECDSA signature (DER) over `digest(sequence:hash:)`.
    public var signature: [UInt8]

    public init(sequence: Int64, hash: String, reason: String, key: String, signature: [UInt8]) {
        self.sequence = sequence
        self.hash = hash
        self.reason = reason
        self.key = key
        self.signature = signature
    }

    /// The record's details.
    public var details: String {
        "seq=\(self.sequence) hash=\(self.hash) reason=\(self.reason) key=\(self.key) signature=\(Data(self.signature).base64EncodedString())"
    }

    /// Reads a checkpoint record's details; nil when they are not a checkpoint's.
    public init?(details: String) {
        var fields: [Substring: Substring] = [:]
        for field in details.split(separator: " ") {
            guard let equals = field.firstIndex(of: "=") else { return nil }
            fields[field[..<equals]] = field[field.index(after: equals)...]
        }
        guard let sequence = fields["seq"].flatMap({ Int64($0) }), let hash = fields["hash"], hash.count == 64,
              let reason = fields["reason"], let key = fields["key"],
              let signature = fields["signature"].flatMap({ Data(base64Encoded: String($0)) }) else { return nil }
        self.init(sequence: sequence, hash: String(hash), reason: String(reason), key: String(key), signature: Array(signature))
    }

    /// The SHA-384 digest the token signs (of `message(sequence:hash:)`).
    public static func digest(sequence: Int64, hash: String) -> [UInt8] {
        Array(SHA384.hash(data: self.message(sequence: sequence, hash: hash)))
    }

    /// What is signed: a label, the sequence number and the hash, each length-prefixed.
    public static func message(sequence: Int64, hash: String) -> Data {
        var data = Data()
        for field in ["sigillo audit checkpoint v1", String(sequence), hash] {
            let bytes = Array(field.utf8)
            data.append(contentsOf: withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { Array($0) })
            data.append(contentsOf: bytes)
        }
        return data
    }

    /// Whether the signature is `publicKey`'s over this sequence number and hash.
    public func isSigned(by publicKey: P384.Signing.PublicKey) -> Bool {
        guard let signature = try? P384.Signing.ECDSASignature(derRepresentation: self.signature) else { return false }
        return publicKey.isValidSignature(signature, for: SHA384.hash(data: Self.message(sequence: self.sequence, hash: self.hash)))
    }

    /// Names a public key (SubjectPublicKeyInfo, DER): its SHA-256, hex.
    public static func fingerprint(_ spki: [UInt8]) -> String {
        SHA256.hash(data: spki).map { String(format: "%02x", $0) }.joined()
    }
}
