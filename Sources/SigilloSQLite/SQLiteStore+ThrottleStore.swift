import Foundation
import GRDB
import SigilloDomain

/// Abuse counters (`throttle_events`, times in milliseconds; `expires_at`: when the event leaves its window).
extension SQLiteStore: ThrottleStore {
    public func admit(throttle key: String, now: Date, window: TimeInterval, limit: Int, count: Int) async throws -> Bool {
        try await self.write { db in
            let since = Self.milliseconds(now.addingTimeInterval(-window))
            try db.execute(sql: "DELETE FROM throttle_events WHERE key = ? AND time < ?", arguments: [key, since])
            let counted = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM throttle_events WHERE key = ?", arguments: [key]) ?? 0
            guard counted + count <= limit else { return false }
            for _ in 0..<count {
                try db.execute(sql: "INSERT INTO throttle_events (key, time, expires_at) VALUES (?, ?, ?)",
                               arguments: [key, Self.milliseconds(now), Self.milliseconds(now.addingTimeInterval(window))])
            }
            return true
        }
    }

    public func purgeThrottles(now: Date) async throws -> Int {
        try await self.write { db in
            try db.execute(sql: "DELETE FROM throttle_events WHERE expires_at < ?", arguments: [Self.milliseconds(now)])
            return db.changesCount
        }
    }
}
