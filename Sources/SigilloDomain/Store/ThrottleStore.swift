import Foundation

/// Counters that bound abuse (SMS, mails, anonymous requests per account), atomic across nodes.
public protocol ThrottleStore: Sendable {
    /// Counts `count` events under `key` and returns true when, with them, no more than `limit` were counted in the
    /// `window` before `now`; returns false (and counts nothing) otherwise. Atomic: concurrent callers cannot all slip
    /// under the limit.
    func admit(throttle key: String, now: Date, window: TimeInterval, limit: Int, count: Int) async throws -> Bool

    /// Deletes the events whose window ended before `now`, whatever their key (keys never used again would otherwise
    /// keep theirs): returns how many.
    func purgeThrottles(now: Date) async throws -> Int
}
