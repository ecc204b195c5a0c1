import Foundation
import Synchronization

/// Something a test waits for (a dispatcher gone idle, a mail marked sent, a line a server printed): fired once by
/// whoever sees it happen, awaited without polling. The wait has one generous overall limit, there only so that a
/// broken build fails instead of hanging; it is not a timing assumption about a working one.
public final class TestEvent: Sendable {
    private struct State {
        var fired = false
        var next = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())
    public let name: String

    public init(_ name: String) {
        self.name = name
    }

    /// Marks the event as happened and wakes every waiter; later calls do nothing.
    public func fire() {
        let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.fired else { return [] }
            state.fired = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    public var hasFired: Bool { self.state.withLock { $0.fired } }

    /// Returns once the event has fired (at once if it already has).
    /// - Throws: `TestEventTimeout` when `limit` passes first.
    public func wait(upTo limit: Duration = .seconds(300)) async throws {
        let fired = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.waitUntilFiredOrCancelled()
                return !Task.isCancelled || self.hasFired
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first || self.hasFired
        }
        if !fired { throw TestEventTimeout(description: "\(self.name) did not happen within \(limit)") }
    }

    private func waitUntilFiredOrCancelled() async {
        let id = self.state.withLock { state -> Int in
            state.next += 1
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = self.state.withLock { state -> Bool in
                    if state.fired || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }
}

public struct TestEventTimeout: Error, CustomStringConvertible {
    public let description: String
}
