import Foundation
import SigilloDomain
import Synchronization

/// Per-address token buckets in memory: each address may spend `capacity` requests at once, refilled at `capacity` per
/// `window`. Cheap (one dictionary look-up under a lock, no I/O), so it runs before anything else of an anonymous route.
///
/// Memory is bounded by `maxEntries` buckets. A full bucket is the same as no bucket, so idle addresses are dropped
/// first; if that is not enough (an attacker with very many addresses), the least recently seen go, which at worst
/// hands an address it forgets a fresh bucket.
final class AddressRateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: Date
    }

    /// Whether a request may go on.
    enum Decision: Equatable {
        case admitted
        /// Refused: a token comes back in this many seconds.
        case refused(retryAfter: Int)
    }

    let capacity: Double
    /// Tokens per second.
    let rate: Double
    let maxEntries: Int
    let clock: ServiceClock
    private let buckets = Mutex<[String: Bucket]>([:])

    init(capacity: Int, window: Int, maxEntries: Int, clock: ServiceClock) {
        self.capacity = Double(capacity)
        self.rate = Double(capacity) / Double(max(1, window))
        self.maxEntries = max(1, maxEntries)
        self.clock = clock
    }

    /// Addresses tracked now.
    var count: Int { self.buckets.withLock { $0.count } }

    /// Takes one token from `key`'s bucket, or says how long until there is one.
    func admit(_ key: String) -> Decision {
        let now = self.clock.now()
        return self.buckets.withLock { buckets in
            var bucket: Bucket
            if let existing = buckets[key] {
                bucket = existing
                // A clock moved backwards refills nothing.
                bucket.tokens = min(self.capacity, bucket.tokens + max(0, now.timeIntervalSince(bucket.updated)) * self.rate)
            } else {
                if buckets.count >= self.maxEntries { self.evict(&buckets, now: now) }
                bucket = Bucket(tokens: self.capacity, updated: now)
            }
            bucket.updated = max(bucket.updated, now)
            // A hair of tolerance: 12 s at 5 a minute gives 0.99999… tokens in floating point, and should give one.
            guard bucket.tokens >= 1 - 1e-9 else {
                buckets[key] = bucket
                return .refused(retryAfter: max(1, Int(((1 - bucket.tokens) / self.rate - 1e-9).rounded(.up))))
            }
            bucket.tokens = max(0, bucket.tokens - 1)
            buckets[key] = bucket
            return .admitted
        }
    }

    /// Drops the buckets that are full again; then, if more than three quarters of the bound remain, the least
    /// recently seen down to three quarters (so the next eviction is a quarter of the bound away: amortised cost).
    private func evict(_ buckets: inout [String: Bucket], now: Date) {
        buckets = buckets.filter { $0.value.tokens + max(0, now.timeIntervalSince($0.value.updated)) * self.rate < self.capacity }
        let target = self.maxEntries * 3 / 4
        guard buckets.count > target else { return }
        for (key, _) in buckets.sorted(by: { $0.value.updated < $1.value.updated }).prefix(buckets.count - target) { buckets[key] = nil }
    }
}
