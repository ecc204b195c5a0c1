import SigilloDomain
import GRDB
import Synchronization

/// Group commit: small writes from concurrent requests share one transaction, so one WAL sync
/// (`fsync`, ~1.5 ms on the development VM) serves all of them instead of one each.
///
/// Each write runs in its own savepoint inside the shared transaction: one that throws is rolled back
/// alone and gets its own error. Every caller resumes only after the shared transaction committed
/// (durably, with the database's normal `synchronous` setting); if the commit fails, every caller of that
/// batch gets the error and none of their changes is kept. Writes are taken in arrival order, and the
/// batch is whatever arrived by the time the writer queue is free, so a lone write waits for nothing.
final class GroupCommit: Sendable {
    private struct Job: Sendable {
        let run: @Sendable (Database) -> Void
        let finish: @Sendable ((any Error)?) -> Void
    }

    private let database: any DatabaseWriter
    private let state = Mutex<(pending: [Job], scheduled: Bool)>(([], false))

    /// `database`: the store's pool (a file in WAL mode), or any writer (an in-memory queue in tests).
    init(database: any DatabaseWriter) {
        self.database = database
    }

    /// Runs `body` in the next shared transaction and returns its result once that transaction committed.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let outcome = Mutex<Result<T, any Error>?>(nil)
            let job = Job(
                run: { db in
                    let result = Result<T, any Error> {
                        var value: T?
                        try db.inSavepoint {
                            value = try body(db)
                            return .commit
                        }
                        return value!
                    }
                    outcome.withLock { $0 = result }
                },
                finish: { commitError in
                    if let commitError {
                        continuation.resume(throwing: commitError)
                    } else {
                        continuation.resume(with: outcome.withLock { $0 } ?? .failure(CancellationError()))
                    }
                })
            let schedule = self.state.withLock { state -> Bool in
                state.pending.append(job)
                guard !state.scheduled else { return false }
                state.scheduled = true
                return true
            }
            if schedule { self.drain() }
        }
    }

    /// Queues one transaction on GRDB's writer; it takes every job pending when it starts.
    private func drain() {
        self.database.asyncWriteWithoutTransaction { db in
            let batch = self.state.withLock { state -> [Job] in
                defer {
                    state.pending = []
                    state.scheduled = false
                }
                return state.pending
            }
            do {
                try db.inTransaction(.immediate) {
                    for job in batch { job.run(db) }
                    return .commit
                }
                for job in batch { job.finish(nil) }
            } catch {
                for job in batch { job.finish(error) }
            }
        }
    }
}
