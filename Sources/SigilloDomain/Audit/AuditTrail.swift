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
}

/// The audit log as operators see it: checked end to end, exported. Both are audited themselves.
public struct AuditTrail: Sendable {
    let store: any AuditStore
    let audit: AuditLog

    /// Checks the hash chain, that sequence numbers run 1, 2, 3… without gaps, and that the last row is the
    /// last one ever written (SQLite's `sqlite_sequence`), so edited, deleted (anywhere) and reordered rows show.
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
        try await self.audit.record(actor, "audit.verify", target: "audit_events", outcome: result.intact ? "ok" : "broken",
                                     details: result.problem ?? "records=\(records.count)")
        return result
    }

    /// Every audit record, in order.
    public func export(actor: String) async throws -> [AuditRecord] {
        let records = try await self.store.auditRecords()
        try await self.audit.record(actor, "audit.export", target: "audit_events", outcome: "ok", details: "records=\(records.count)")
        return records
    }
}
