import Crypto
import Foundation
import SigilloDomain
import Synchronization

/// Per-account limits that hold across nodes: at most `limit` anonymous requests naming one account (username,
/// email, activation or reset code…) in any `window`, counted atomically in the store's `throttle_events`.
///
/// The store never sees the account: the key is a SHA-256 of it (codes and links are secrets; usernames and the
/// addresses people typed are personal data). Expired events of every key are purged every `purgeInterval`, by
/// whichever request comes first after it.
final class AccountRateLimiter: Sendable {
    let store: any ThrottleStore
    let limit: Int
    let window: Int
    let clock: ServiceClock
    let purgeInterval: TimeInterval = 300
    private let lastPurge = Mutex<Date?>(nil)

    init(store: any ThrottleStore, limit: Int, window: Int, clock: ServiceClock) {
        self.store = store
        self.limit = limit
        self.window = max(1, window)
        self.clock = clock
    }

    /// The store key for `account` (trimmed, case folded).
    static func key(_ account: String) -> String {
        let normalized = account.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        let digest = SHA256.hash(data: Data("sigillo.rate-limit.account\u{0}\(normalized)".utf8))
        return "anon-account/" + digest.prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// Counts one request naming `account`; refused when `limit` were already counted in the window.
    func admit(_ account: String) async throws -> AddressRateLimiter.Decision {
        let now = self.clock.now()
        let purge = self.lastPurge.withLock { last -> Bool in
            guard last.map({ now.timeIntervalSince($0) >= self.purgeInterval || now < $0 }) ?? true else { return false }
            last = now
            return true
        }
        if purge { _ = try await self.store.purgeThrottles(now: now) }
        guard try await self.store.admit(throttle: Self.key(account), now: now, window: TimeInterval(self.window), limit: self.limit, count: 1) else {
            // The oldest counted request leaves the window at most `window` seconds from now.
            return .refused(retryAfter: self.window)
        }
        return .admitted
    }
}
