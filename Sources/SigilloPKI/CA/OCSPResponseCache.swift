import Foundation
import Synchronization

/// The OCSP responder's pre-signed answers, one per CertID (a certificate, per CertID hash algorithm), each with the
/// status it states and when it was produced.
///
/// An answer is served while it states the status the store has now and is younger than `freshFor`; otherwise one
/// signature makes a new one, and every request arriving meanwhile for the same CertID and status waits for that
/// same signature (single flight). Fresh signatures are bounded by a token bucket (`signingBurst` at once,
/// `signingRate` per second): past it `answer` returns nil and the responder says `tryLater`, so requests for ever
/// new serial numbers cannot keep the token busy. At most `maxEntries` answers are kept: stale ones go first, then
/// the oldest.
final class OCSPResponseCache: Sendable {
    /// A signed answer and what it says.
    struct Answer: Sendable {
        var status: OCSPResponder.CertificateStatus
        var der: [UInt8]
        var producedAt: Date
    }

    enum Slot {
        case ready(Answer)
        /// Being signed by `task`; `id` tells this signing from a later one for the same CertID.
        case pending(id: UInt64, status: OCSPResponder.CertificateStatus, task: Task<Answer, any Error>)
    }

    struct State {
        var slots: [[UInt8]: Slot] = [:]
        var nextID: UInt64 = 0
        var tokens: Double
        var tokensAt: Date?
    }

    let maxEntries: Int
    let signingBurst: Double
    let signingRate: Double
    private let state: Mutex<State>
    private let signatures = Atomic<Int>(0)
    private let hits = Atomic<Int>(0)
    private let refusals = Atomic<Int>(0)

    init(maxEntries: Int, signingBurst: Int, signingRate: Double) {
        self.maxEntries = max(1, maxEntries)
        self.signingBurst = Double(max(1, signingBurst))
        self.signingRate = max(0, signingRate)
        self.state = Mutex(State(tokens: Double(max(1, signingBurst))))
    }

    /// Signatures started since the cache was made.
    var signatureCount: Int { self.signatures.load(ordering: .relaxed) }
    /// Answers served without a signature of their own since the cache was made: a kept answer, or one being signed
    /// for an earlier request.
    var hitCount: Int { self.hits.load(ordering: .relaxed) }
    /// Requests refused (`tryLater`) because the signing budget was spent.
    var refusalCount: Int { self.refusals.load(ordering: .relaxed) }

    /// Answers kept (signed or being signed).
    var count: Int { self.state.withLock { $0.slots.count } }

    /// The answer for `key` stating `status` at `now`: cached, being signed, or signed now with `sign`; nil when the
    /// signing budget is spent.
    func answer(for key: [UInt8], status: OCSPResponder.CertificateStatus, now: Date, freshFor: TimeInterval,
                sign: @escaping @Sendable () async throws -> [UInt8]) async throws -> Answer? {
        enum Step {
            case done(Answer)
            case wait(Task<Answer, any Error>)
            case refused
        }
        let step: Step = self.state.withLock { state in
            switch state.slots[key] {
            case .ready(let answer) where answer.status == status && now >= answer.producedAt && now.timeIntervalSince(answer.producedAt) < freshFor:
                self.hits.add(1, ordering: .relaxed)
                return .done(answer)
            case .pending(_, let pending, let task) where pending == status:
                self.hits.add(1, ordering: .relaxed)
                return .wait(task)
            default:
                break
            }
            guard self.takeToken(&state, now: now) else {
                self.refusals.add(1, ordering: .relaxed)
                return .refused
            }
            if state.slots[key] == nil, state.slots.count >= self.maxEntries { self.evict(&state, now: now, freshFor: freshFor) }
            state.nextID += 1
            let id = state.nextID
            let task = Task {
                self.signatures.add(1, ordering: .relaxed)
                do {
                    let answer = Answer(status: status, der: try await sign(), producedAt: now)
                    self.finish(key, id: id, with: .ready(answer))
                    return answer
                } catch {
                    self.finish(key, id: id, with: nil)
                    throw error
                }
            }
            state.slots[key] = .pending(id: id, status: status, task: task)
            return .wait(task)
        }
        switch step {
        case .done(let answer): return answer
        case .wait(let task): return try await task.value
        case .refused: return nil
        }
    }

    /// Stores the outcome of signing `id`, unless a later signing for `key` replaced it meanwhile.
    private func finish(_ key: [UInt8], id: UInt64, with slot: Slot?) {
        self.state.withLock { state in
            guard case .pending(let current, _, _) = state.slots[key], current == id else { return }
            state.slots[key] = slot
        }
    }

    private func takeToken(_ state: inout State, now: Date) -> Bool {
        if let last = state.tokensAt {
            state.tokens = min(self.signingBurst, state.tokens + max(0, now.timeIntervalSince(last)) * self.signingRate)
        }
        state.tokensAt = max(state.tokensAt ?? now, now)
        guard state.tokens >= 1 else { return false }
        state.tokens -= 1
        return true
    }

    /// Drops stale answers; then, above three quarters of the bound, the oldest answers down to it.
    private func evict(_ state: inout State, now: Date, freshFor: TimeInterval) {
        state.slots = state.slots.filter { _, slot in
            guard case .ready(let answer) = slot else { return true }
            return now >= answer.producedAt && now.timeIntervalSince(answer.producedAt) < freshFor
        }
        let target = self.maxEntries * 3 / 4
        guard state.slots.count > target else { return }
        let ready = state.slots.compactMap { key, slot -> (key: [UInt8], producedAt: Date)? in
            guard case .ready(let answer) = slot else { return nil }
            return (key, answer.producedAt)
        }
        for entry in ready.sorted(by: { $0.producedAt < $1.producedAt }).prefix(state.slots.count - target) { state.slots[entry.key] = nil }
    }
}
