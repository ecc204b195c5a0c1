import Crypto
import Foundation
import PKCS11
import Synchronization

/// The latest checkpoint record as the token keeps it: the record's sequence number and hash.
public struct AuditAnchor: Sendable, Equatable {
    public var sequence: Int64
    public var hash: String

    public init(sequence: Int64, hash: String) {
        self.sequence = sequence
        self.hash = hash
    }

    /// The data object's value: `sigillo audit anchor v1 seq=… hash=…`.
    var bytes: [UInt8] { Array("sigillo audit anchor v1 seq=\(self.sequence) hash=\(self.hash)".utf8) }

    init?(bytes: [UInt8]) {
        let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ")
        guard fields.count == 6, fields[0...3] == ["sigillo", "audit", "anchor", "v1"], fields[4].hasPrefix("seq="), fields[5].hasPrefix("hash="),
              let sequence = Int64(fields[4].dropFirst(4)) else { return nil }
        self.init(sequence: sequence, hash: String(fields[5].dropFirst(5)))
    }
}

/// What the checkpoints say about an audit log (part of `AuditVerification`).
public struct CheckpointFindings: Sendable, Equatable {
    /// Checkpoint records whose signature and signed record check out.
    public var checkpoints = 0
    /// Every record up to this one is anchored: the highest record a verified checkpoint signed, or the token's anchor
    /// (a checkpoint record) when it checks out. Not where a checkpoint record sits: a copy of an old checkpoint
    /// appended at the end proves nothing about the records before it.
    public var anchoredThrough: Int64?
    /// Records after it: not anchored yet (the next checkpoint will).
    public var unanchored = 0
    /// The first thing found wrong, and the record it concerns.
    public var problem: String?
    public var brokenSequence: Int64?
}

/// Anchors the audit log outside the database, so that rewriting the file — the chain recomputed and SQLite's
/// `sqlite_sequence` adjusted together, or the tail truncated — shows.
///
/// - A **checkpoint** signs the chain's head (sequence number and hash) with the audit key, an ECDSA P-384 key pair
///   generated in the token (sensitive, non-extractable) the first time the service starts, and appends the signature
///   to the chain as an `audit.checkpoint` record. A rewritten chain no longer has the hashes the checkpoints signed,
///   and new signatures need the token. A key of its own rather than the CA's: it signs nothing a relying party sees,
///   and losing or rotating the CA key leaves the log verifiable.
/// - The token also keeps the **anchor**: the latest checkpoint record's sequence number and hash, in a private data
///   object (readable and writable only after login). Deleting the log's last rows, checkpoints included, leaves the
///   anchor pointing at a missing record. The anchor only moves forward along the same chain: a log that lost the
///   anchored record (an attack, or a restored backup) keeps failing verification until an operator resets it,
///   which the log records.
///
/// Verification reads the public key and the anchor from the token, never from the database.
public struct AuditCheckpoints: Sendable {
    /// The audit key pair's `CKA_ID` in the token.
    public static let defaultKeyID = "sigillo-audit-key"
    /// The token data object holding the anchor.
    public static let anchorLabel = "sigillo-audit-anchor"

    let store: any AuditStore
    let token: Token
    let keyID: String
    let clock: ServiceClock
    private let publicKeyCache = PublicKeyCache()

    public init(store: any AuditStore, token: Token, keyID: String = Self.defaultKeyID, clock: ServiceClock = .system) {
        self.store = store
        self.token = token
        self.keyID = keyID
        self.clock = clock
    }

    /// Makes sure the audit key is in the token (start-up): generated when missing and the log holds no checkpoint yet.
    ///
    /// - Returns: the public key (SubjectPublicKeyInfo, DER).
    /// - Throws: `internalError` when the log has checkpoints but the token has no audit key (wrong token or database:
    ///   a new key would leave every earlier checkpoint unverifiable), or the key is not ECDSA P-384.
    @discardableResult
    public func prepare() async throws -> [UInt8] {
        if try await !self.token.containsKey(id: self.keyID) {
            guard try await self.store.latestAuditCheckpoint() == nil else {
                throw SigilloError(.internalError, "the audit log has checkpoints signed with the audit key '\(self.keyID)', which this token does not have: wrong token or database")
            }
            do {
                _ = try await self.token.generateKeyPair(id: self.keyID, algorithm: .ecP384, label: "sigillo audit checkpoints")
            } catch let error as PKCS11Error where error.code == .keyAlreadyExists {
                // Another node made it meanwhile.
            }
        }
        guard try await self.token.keyAlgorithm(id: self.keyID) == .ecP384 else {
            throw SigilloError(.internalError, "the audit key '\(self.keyID)' in the token is not an ECDSA P-384 key")
        }
        guard let spki = try await self.publicKey() else { throw SigilloError(.internalError, "the audit key '\(self.keyID)' has no public key in the token") }
        return spki
    }

    /// The audit key's public key from the token (cached once read); nil when the token has no audit key.
    public func publicKey() async throws -> [UInt8]? {
        if let cached = self.publicKeyCache.value.withLock({ $0 }) { return cached }
        do {
            let spki = try await self.token.publicKey(id: self.keyID)
            self.publicKeyCache.value.withLock { $0 = spki }
            return spki
        } catch let error as PKCS11Error where error.code == .keyNotFound {
            return nil
        }
    }

    /// The anchor the token keeps (the newest, should a crash have left two); nil before the first checkpoint.
    public func anchor() async throws -> AuditAnchor? {
        try await self.token.dataObjectValues(label: Self.anchorLabel).compactMap(AuditAnchor.init(bytes:)).max { $0.sequence < $1.sequence }
    }

    /// Signs the chain's head, appends the checkpoint record and moves the token's anchor to it.
    ///
    /// - Returns: the checkpoint record, or nil when the head already is one (nothing new to anchor).
    /// - Throws: token errors; `internalError` when the anchored record is gone or differs (the record is written, the
    ///   anchor stays where it was, so verification keeps failing).
    @discardableResult
    public func checkpoint(reason: String, actor: String = AuditCheckpoint.actor) async throws -> AuditRecord? {
        guard let written = try await self.writeCheckpoint(reason: reason, actor: actor) else { return nil }
        try await self.advanceAnchor(to: written)
        return written
    }

    /// Why a checkpoint is due now, or nil: `records` when `every` records were appended since the last one,
    /// `interval` when any were and the last is `interval` seconds old (or there is none).
    public func due(every: Int, interval: TimeInterval) async throws -> String? {
        guard let head = try await self.store.auditHead(), head.event.action != AuditCheckpoint.action else { return nil }
        guard let last = try await self.store.latestAuditCheckpoint() else { return "interval" }
        if head.sequence - last.sequence >= Int64(every) { return "records" }
        return self.clock.now().timeIntervalSince(last.time) >= interval ? "interval" : nil
    }

    /// Points the anchor at the latest checkpoint whatever it pointed at, after a new checkpoint; for an operator,
    /// after restoring a backup that lost the anchored record. Recorded in the log (with the old anchor) before.
    ///
    /// - Returns: the old anchor and the new one.
    public func resetAnchor(actor: String) async throws -> (old: AuditAnchor?, new: AuditAnchor?) {
        let old = try await self.anchor()
        try await self.store.audit(
            AuditEvent(actor: actor, action: "audit.anchor.reset", target: "audit_events", outcome: "ok",
                       details: old.map { "was seq=\($0.sequence) hash=\($0.hash)" } ?? "was none"), at: self.clock.now())
        guard let written = try await self.writeCheckpoint(reason: "operator", actor: actor) else { return (old, old) }
        let anchor = AuditAnchor(sequence: written.sequence, hash: written.hash)
        try await self.token.storeDataObject(label: Self.anchorLabel, value: anchor.bytes)
        return (old, anchor)
    }

    /// Checks every checkpoint in `records` (the whole log, in order) with the token's audit key, and the token's anchor.
    public func check(_ records: [AuditRecord]) async throws -> CheckpointFindings {
        let spki = try await self.publicKey()
        return Self.check(records, publicKey: spki.flatMap { try? P384.Signing.PublicKey(derRepresentation: $0) }, anchor: try await self.anchor(), keyID: self.keyID)
    }

    /// The check itself: each checkpoint record readable, signed by `publicKey`, naming an earlier record that is present
    /// with the hash signed; the anchor's record present, with its hash, and a checkpoint.
    static func check(_ records: [AuditRecord], publicKey: P384.Signing.PublicKey?, anchor: AuditAnchor?, keyID: String) -> CheckpointFindings {
        var findings = CheckpointFindings()
        func fail(_ sequence: Int64, _ problem: String) {
            guard findings.problem == nil else { return }
            findings.problem = problem
            findings.brokenSequence = sequence
        }
        let bySequence = Dictionary(records.map { ($0.sequence, $0) }, uniquingKeysWith: { first, _ in first })
        for record in records where record.event.action == AuditCheckpoint.action {
            guard let checkpoint = AuditCheckpoint(details: record.event.details) else {
                fail(record.sequence, "record \(record.sequence) claims to be a checkpoint but is not one")
                continue
            }
            guard let publicKey else {
                fail(record.sequence, "checkpoint \(record.sequence) cannot be checked: the audit key '\(keyID)' is not in the token")
                continue
            }
            guard checkpoint.isSigned(by: publicKey) else {
                fail(record.sequence, "checkpoint \(record.sequence) is not signed by the token's audit key (forged or altered)")
                continue
            }
            guard checkpoint.sequence < record.sequence, let signed = bySequence[checkpoint.sequence] else {
                fail(record.sequence, "record \(checkpoint.sequence), signed by checkpoint \(record.sequence), is missing (deleted)")
                continue
            }
            guard signed.hash == checkpoint.hash else {
                fail(checkpoint.sequence, "record \(checkpoint.sequence) is not the one checkpoint \(record.sequence) signed (the chain was rewritten)")
                continue
            }
            findings.checkpoints += 1
            findings.anchoredThrough = max(findings.anchoredThrough ?? 0, checkpoint.sequence)
        }
        if let anchor {
            let kept = bySequence[anchor.sequence]
            if kept?.hash != anchor.hash || kept?.event.action != AuditCheckpoint.action {
                fail(anchor.sequence, "the latest checkpoint the token keeps, record \(anchor.sequence), is "
                     + (kept == nil ? "missing: the records from there on were deleted" : "not in the log as signed: the chain was rewritten"))
            } else {
                findings.anchoredThrough = max(findings.anchoredThrough ?? 0, anchor.sequence)
            }
        }
        findings.unanchored = records.count(where: { $0.sequence > (findings.anchoredThrough ?? 0) })
        return findings
    }

    /// Signs the chain's head and appends the checkpoint record; nil when the head already is one.
    private func writeCheckpoint(reason: String, actor: String) async throws -> AuditRecord? {
        guard let head = try await self.store.auditHead(), head.event.action != AuditCheckpoint.action else { return nil }
        guard let spki = try await self.publicKey() else {
            throw SigilloError(.internalError, "the audit key '\(self.keyID)' is not in the token")
        }
        let signature = try await Signer(token: self.token).sign(
            digest: AuditCheckpoint.digest(sequence: head.sequence, hash: head.hash), credential: self.keyID, mechanism: .ecdsa(.sha384))
        let checkpoint = AuditCheckpoint(sequence: head.sequence, hash: head.hash, reason: reason, key: AuditCheckpoint.fingerprint(spki), signature: signature)
        try await self.store.audit(
            AuditEvent(actor: actor, action: AuditCheckpoint.action, target: "audit_events", outcome: "ok", details: checkpoint.details), at: self.clock.now())
        return try await self.store.latestAuditCheckpoint()
    }

    /// Moves the anchor forward to `record`, only along the same chain: the record it points at now must still be there.
    private func advanceAnchor(to record: AuditRecord) async throws {
        if let current = try await self.anchor() {
            guard let kept = try await self.store.auditRecord(sequence: current.sequence), kept.hash == current.hash else {
                throw SigilloError(.internalError, "the audit log no longer holds the checkpoint the token keeps (record \(current.sequence)): "
                                   + "records were deleted or rewritten; the anchor stays there (sigillo admin audit verify)")
            }
            // Never backwards (another node may have moved it further meanwhile).
            guard current.sequence < record.sequence else { return }
        }
        try await self.token.storeDataObject(label: Self.anchorLabel, value: AuditAnchor(sequence: record.sequence, hash: record.hash).bytes)
    }
}

/// The audit public key, read from the token once.
private final class PublicKeyCache: Sendable {
    let value = Mutex<[UInt8]?>(nil)
}
