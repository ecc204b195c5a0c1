import Foundation

/// The outcome of checking the audit log.
public struct AuditVerification: Sendable, Equatable, Codable {
    public var intact: Bool
    /// Rows checked.
    public var records: Int
    /// The highest sequence number ever handed out.
    public var highestSequence: Int64
    /// The first row found wrong (edited, out of place, or after a gap), if any.
    public var firstBrokenSequence: Int64?
    public var problem: String?
    /// Checkpoints verified: signed by the token's audit key over a record still in the chain as signed.
    public var checkpoints: Int = 0
    /// Every record up to this one is anchored: signed by a verified checkpoint, or the token's anchor (nil before the
    /// first checkpoint).
    public var anchoredThrough: Int64?
    /// Records after it, not anchored yet (the next checkpoint will).
    public var unanchored: Int = 0
}

/// The audit log as operators see it: checked end to end, exported. Both are audited themselves.
public struct AuditTrail: Sendable {
    let store: any AuditStore
    let audit: AuditLog
    /// Checkpoints and the token's anchor (`AuditCheckpoints`).
    public let checkpoints: AuditCheckpoints

    /// Checks the hash chain, that sequence numbers run 1, 2, 3… without gaps, and that the last row is the
    /// last one ever written (SQLite's `sqlite_sequence`), so edited, deleted (anywhere) and reordered rows show;
    /// then every checkpoint's signature with the token's audit key and the token's anchor, so a chain rewritten
    /// with `sqlite_sequence` to match, or a log that lost its last rows checkpoints included, shows too.
    public func verify(actor: String) async throws -> AuditVerification {
        let records = try await self.store.auditRecords()
        let highWater = try await self.store.auditSequenceHighWater() ?? 0
        var result = AuditVerification(intact: true, records: records.count, highestSequence: highWater)
        if let broken = AuditChain.firstBrokenRecord(records) {
            result.intact = false
            result.firstBrokenSequence = broken.sequence
            result.problem = "record \(broken.sequence) does not match the hash chain (edited, deleted before it, or reordered)"
        } else if let gap = zip(records, 1...).first(where: { $0.0.sequence != Int64($0.1) }) {
            result.intact = false
            result.firstBrokenSequence = gap.0.sequence
            result.problem = "records are missing before \(gap.0.sequence)"
        } else if Int64(records.count) < highWater {
            result.intact = false
            result.problem = "the last \(highWater - Int64(records.count)) record(s) were deleted (last present \(records.count), highest written \(highWater))"
        }
        let findings = try await self.checkpoints.check(records)
        result.checkpoints = findings.checkpoints
        result.anchoredThrough = findings.anchoredThrough
        result.unanchored = findings.unanchored
        if result.intact, let problem = findings.problem {
            result.intact = false
            result.firstBrokenSequence = findings.brokenSequence
            result.problem = problem
        }
        try await self.audit.record(actor, "audit.verify", target: "audit_events", outcome: result.intact ? "ok" : "broken",
                                     details: result.problem ?? "records=\(records.count)")
        return result
    }

    /// Writes a checkpoint now, as `actor` (an operator, e.g. before a backup; the server also writes them on its own).
    ///
    /// - Returns: the checkpoint record (the latest one when nothing was appended since it).
    public func checkpoint(actor: String) async throws -> AuditRecord? {
        if let written = try await self.checkpoints.checkpoint(reason: "operator", actor: actor) { return written }
        return try await self.store.latestAuditCheckpoint()
    }

    /// Points the token's anchor at a new checkpoint whatever it pointed at: after restoring a backup that lost the
    /// anchored record, once the loss is understood. The log records the old anchor first (`audit.anchor.reset`).
    public func resetAnchor(actor: String) async throws -> (old: AuditAnchor?, new: AuditAnchor?) {
        try await self.checkpoints.resetAnchor(actor: actor)
    }

    /// Every audit record, in order.
    public func export(actor: String) async throws -> [AuditRecord] {
        let records = try await self.store.auditRecords()
        try await self.audit.record(actor, "audit.export", target: "audit_events", outcome: "ok", details: "records=\(records.count)")
        return records
    }
}
