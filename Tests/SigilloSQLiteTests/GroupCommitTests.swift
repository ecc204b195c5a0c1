import Foundation
import GRDB
import SigilloDomain
@testable import SigilloSQLite
import SigilloTestSupport
import Synchronization
import Testing

@Suite("Group commit: concurrent hot-path writes share transactions")
struct GroupCommitTests {
    @Test("200 concurrent audit records: all stored, one intact chain", arguments: StoreKind.allCases)
    func concurrentAudit(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let before = try await store.auditRecords().count
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask { try await store.audit(AuditEvent(actor: "test", action: "test.concurrent", target: "\(index)", outcome: "ok"), at: Date()) }
            }
            try await group.waitForAll()
        }
        let records = try await store.auditRecords()
        #expect(records.count == before + 200)
        #expect(Set(records.filter { $0.event.action == "test.concurrent" }.map(\.event.target)).count == 200)
        #expect(AuditChain.firstBrokenRecord(records) == nil)
    }

    @Test("writes that arrive while the writer is busy go into one transaction: fewer commits than writes, each write kept")
    func sharedTransactions() async throws {
        let folder = try TestHSM.makeTemporaryDirectory()
        let store = try SQLiteStore(path: folder.appendingPathComponent("group.sqlite").path, vault: nil)
        let commits = CommitCounter()
        store.database.add(transactionObserver: commits, extent: .observerLifetime)

        // The writer is held busy (a write blocked on a semaphore, on GRDB's own thread) until every task has started its
        // audit write, so that they all queue up behind it, as concurrent requests do under load.
        let count = 200
        let writerFree = DispatchSemaphore(value: 0)
        store.database.asyncWriteWithoutTransaction { _ in writerFree.wait() }
        let started = StartCounter()
        let allStarted = TestEvent("every write started")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await allStarted.wait()
                writerFree.signal()
            }
            for index in 0..<count {
                group.addTask {
                    if started.next() == count { allStarted.fire() }
                    try await store.audit(AuditEvent(actor: "test", action: "test.grouped", target: "\(index)", outcome: "ok"), at: Date())
                }
            }
            try await group.waitForAll()
        }
        let batches = commits.batches
        #expect(batches.reduce(0, +) == count)
        #expect(batches.count < count && batches.contains { $0 > 1 }, "one commit per write: \(batches.count) commits of \(batches.max() ?? 0) at most")
        let records = try await store.auditRecords()
        #expect(Set(records.filter { $0.event.action == "test.grouped" }.map(\.event.target)).count == count)
        #expect(AuditChain.firstBrokenRecord(records) == nil)
    }
}

/// Counts the audit rows each committed transaction inserted (GRDB's transaction observer, on the writer's thread).
final class CommitCounter: TransactionObserver, Sendable {
    private let state = Mutex<(current: Int, batches: [Int])>((0, []))
    var batches: [Int] { self.state.withLock { $0.batches } }

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool {
        if case .insert(let table) = eventKind { return table == "audit_events" }
        return false
    }

    func databaseDidChange(with event: DatabaseEvent) {
        self.state.withLock { $0.current += 1 }
    }

    func databaseDidCommit(_ db: Database) {
        self.state.withLock { state in
            if state.current > 0 { state.batches.append(state.current) }
            state.current = 0
        }
    }

    func databaseDidRollback(_ db: Database) {
        self.state.withLock { $0.current = 0 }
    }
}

final class StartCounter: Sendable {
    private let count = Mutex(0)
    /// Counts one more start; returns the count.
    func next() -> Int { self.count.withLock { $0 += 1; return $0 } }
}
