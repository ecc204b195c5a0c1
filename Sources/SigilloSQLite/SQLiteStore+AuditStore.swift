import Foundation
import GRDB
import SigilloDomain

/// The audit log: an append-only hash chain, written through group commit.
extension SQLiteStore: AuditStore {
    public func audit(_ event: AuditEvent, at time: Date) async throws {
        // Group commit keeps the chain: the writes of a shared transaction run one after the other.
        try await self.groupCommit.write { db in try Self.appendAudit(db, event, at: time) }
    }

    /// Appends `event` to the chain inside the caller's transaction (on the writer: the chain stays linear).
    static func appendAudit(_ db: Database, _ event: AuditEvent, at time: Date) throws {
        let previous = try String.fetchOne(db.cachedStatement(sql: "SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1")) ?? AuditChain.genesis
        let seconds = Self.seconds(time)
        let hash = AuditChain.hash(previous: previous, time: seconds, event: event)
        try db.cachedStatement(sql: "INSERT INTO audit_events (time, actor, action, target, outcome, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .execute(arguments: [seconds, event.actor, event.action, event.target, event.outcome, event.details, previous, hash])
    }

    public func auditRecords() async throws -> [AuditRecord] {
        try await self.database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit_events ORDER BY seq").map(Self.auditRecord)
        }
    }

    public func auditHead() async throws -> AuditRecord? {
        try await self.database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1").map(Self.auditRecord)
        }
    }

    public func auditRecord(sequence: Int64) async throws -> AuditRecord? {
        try await self.database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM audit_events WHERE seq = ?", arguments: [sequence]).map(Self.auditRecord)
        }
    }

    public func latestAuditCheckpoint() async throws -> AuditRecord? {
        // The literal action matches the partial index of migration v12: only checkpoint rows are looked at.
        try await self.database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM audit_events WHERE action = 'audit.checkpoint' ORDER BY seq DESC LIMIT 1").map(Self.auditRecord)
        }
    }

    static func auditRecord(_ row: Row) -> AuditRecord {
        AuditRecord(
            sequence: row["seq"], time: Self.date(row["time"]),
            event: AuditEvent(actor: row["actor"], action: row["action"], target: row["target"], outcome: row["outcome"], details: row["details"]),
            previousHash: row["prev_hash"], hash: row["hash"])
    }

    public func auditSequenceHighWater() async throws -> Int64? {
        try await self.database.read { db in
            try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'")
        }
    }
}
