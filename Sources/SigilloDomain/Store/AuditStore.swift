import Foundation

/// The audit log: an append-only SHA-256 hash chain.
public protocol AuditStore: Sendable {
    /// Appends an event to the hash chain.
    func audit(_ event: AuditEvent, at time: Date) async throws
    func auditRecords() async throws -> [AuditRecord]
    /// The highest sequence number ever handed out to an audit event (SQLite's `sqlite_sequence`), even if that
    /// row is gone: a chain that ends below it lost its last rows. Nil when no event was ever written.
    func auditSequenceHighWater() async throws -> Int64?
    /// The last record of the chain (its head); nil when the log is empty.
    func auditHead() async throws -> AuditRecord?
    /// The record with this sequence number, if present.
    func auditRecord(sequence: Int64) async throws -> AuditRecord?
    /// The last checkpoint record (action `AuditCheckpoint.action`); nil when none was written.
    func latestAuditCheckpoint() async throws -> AuditRecord?
}
