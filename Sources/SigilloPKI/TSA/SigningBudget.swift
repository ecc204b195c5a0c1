import Foundation
import Synchronization

/// A token bucket over signatures of a token key: `burst` at once, refilled at `rate` per second.
///
/// The time-stamping endpoint is anonymous and every granted request costs a signature in the token, so grants are
/// bounded here (the same bucket as `OCSPResponseCache`'s): past the budget the caller answers "busy" without
/// signing. Time comes from the caller (the service clock), so tests move it by hand; a clock that goes back refills
/// nothing.
final class SigningBudget: Sendable {
    private struct State {
        var tokens: Double
        var updatedAt: Date?
    }

    let burst: Double
    let rate: Double
    private let state: Mutex<State>
    private let taken = Atomic<Int>(0)

    /// - Parameters:
    ///   - burst: signatures allowed at once (at least 1).
    ///   - rate: signatures per second added back (0: none, the burst is all there is).
    init(burst: Int, rate: Double) {
        self.burst = Double(max(1, burst))
        self.rate = rate.isFinite ? max(0, rate) : 0
        self.state = Mutex(State(tokens: Double(max(1, burst))))
    }

    /// Signatures granted since start.
    var count: Int { self.taken.load(ordering: .relaxed) }

    /// Takes one signature from the budget at `now`.
    ///
    /// - Returns: nil when granted; when refused, the whole seconds (1 to 86 400) until a signature is back.
    func take(now: Date) -> Int? {
        let refused: Int? = self.state.withLock { state in
            if let last = state.updatedAt {
                state.tokens = min(self.burst, state.tokens + max(0, now.timeIntervalSince(last)) * self.rate)
            }
            state.updatedAt = max(state.updatedAt ?? now, now)
            guard state.tokens >= 1 else {
                let wait = self.rate > 0 ? ((1 - state.tokens) / self.rate).rounded(.up) : .infinity
                return wait.isFinite ? Int(min(86_400, max(1, wait))) : 86_400
            }
            state.tokens -= 1
            return nil
        }
        if refused == nil { self.taken.add(1, ordering: .relaxed) }
        return refused
    }
}
