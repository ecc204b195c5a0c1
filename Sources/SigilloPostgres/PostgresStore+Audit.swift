import Foundation
import PostgresNIO
import SigilloDomain
import Synchronization

/// The audit log: one hash chain however many nodes append. Each append batch locks the chain's head row
/// (`audit_state`), links its events to the head, inserts them and moves the head, all in one transaction.
extension PostgresStore: AuditStore {
    public func audit(_ event: AuditEvent, at time: Date) async throws {
        try await self.auditBatcher.append(event, time: Self.seconds(time), store: self)
    }

    public func auditRecords() async throws -> [AuditRecord] {
        try await self.rows("SELECT * FROM audit_events ORDER BY seq").map(Self.auditRecord)
    }

    public func auditHead() async throws -> AuditRecord? {
        try await self.first("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1").map(Self.auditRecord)
    }

    public func auditRecord(sequence: Int64) async throws -> AuditRecord? {
        try await self.first("SELECT * FROM audit_events WHERE seq = \(sequence)").map(Self.auditRecord)
    }

    public func latestAuditCheckpoint() async throws -> AuditRecord? {
        try await self.first("SELECT * FROM audit_events WHERE action = 'audit.checkpoint' ORDER BY seq DESC LIMIT 1").map(Self.auditRecord)
    }

    public func auditSequenceHighWater() async throws -> Int64? {
        try await self.first("SELECT last_seq FROM audit_state WHERE id = 1").map { try $0.integer("last_seq") }
    }

    /// Appends `events` (in order) to the chain in one transaction.
    func appendAudit(_ events: [(event: AuditEvent, time: Int64)]) async throws {
        try await self.transaction { connection in
            // The upsert locks the head row until commit: appends of every node queue here, one batch at a time.
            guard let head = try await Self.first(connection, """
                INSERT INTO audit_state AS s (id, last_seq, head_hash) VALUES (1, 0, \(AuditChain.genesis))
                ON CONFLICT (id) DO UPDATE SET id = s.id RETURNING s.last_seq, s.head_hash
                """) else { throw SigilloError(.internalError, "the audit chain's head is missing") }
            var sequence = try head.integer("last_seq")
            var previous = try head.text("head_hash")
            var columns = (seq: [Int64](), time: [Int64](), actor: [String](), action: [String](), target: [String](), outcome: [String](),
                           details: [String](), prev: [String](), hash: [String]())
            for (event, time) in events {
                sequence += 1
                let hash = AuditChain.hash(previous: previous, time: time, event: event)
                columns.seq.append(sequence)
                columns.time.append(time)
                columns.actor.append(event.actor)
                columns.action.append(event.action)
                columns.target.append(event.target)
                columns.outcome.append(event.outcome)
                columns.details.append(event.details)
                columns.prev.append(previous)
                columns.hash.append(hash)
                previous = hash
            }
            try await Self.execute(connection, """
                INSERT INTO audit_events (seq, time, actor, action, target, outcome, details, prev_hash, hash)
                SELECT * FROM UNNEST(\(columns.seq)::BIGINT[], \(columns.time)::BIGINT[], \(columns.actor)::TEXT[], \(columns.action)::TEXT[],
                                     \(columns.target)::TEXT[], \(columns.outcome)::TEXT[], \(columns.details)::TEXT[], \(columns.prev)::TEXT[], \(columns.hash)::TEXT[])
                """)
            try await Self.execute(connection, "UPDATE audit_state SET last_seq = \(sequence), head_hash = \(previous) WHERE id = 1")
        }
    }
}

/// Group commit of audit appends: the events of concurrent requests wait while one batch is written, then go together
/// in the next one; each caller resumes once its batch committed (or gets the batch's error: none of it was kept).
/// A lone append waits for nothing.
final class AuditBatcher: Sendable {
    private struct Job: Sendable {
        let event: AuditEvent
        let time: Int64
        let continuation: CheckedContinuation<Void, any Error>
    }

    private let state = Mutex<(pending: [Job], running: Bool)>(([], false))
    /// At most this many events per transaction.
    private let limit = 512

    func append(_ event: AuditEvent, time: Int64, store: PostgresStore) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let start = self.state.withLock { state -> Bool in
                state.pending.append(Job(event: event, time: time, continuation: continuation))
                guard !state.running else { return false }
                state.running = true
                return true
            }
            if start {
                Task { await self.drain(store) }
            }
        }
    }

    private func drain(_ store: PostgresStore) async {
        while true {
            let batch = self.state.withLock { state -> [Job] in
                let batch = Array(state.pending.prefix(self.limit))
                state.pending.removeFirst(batch.count)
                if batch.isEmpty { state.running = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                try await store.appendAudit(batch.map { ($0.event, $0.time) })
                for job in batch { job.continuation.resume() }
            } catch {
                for job in batch { job.continuation.resume(throwing: error) }
            }
        }
    }
}
