import Foundation
import GRDB
import SigilloDomain

/// Abuse counters (`throttle_events`, times in milliseconds).
extension SQLiteStore: ThrottleStore {
    public func admit(throttle key: String, now: Date, window: TimeInterval, limit: Int, count: Int) async throws -> Bool {
        try await self.write { db in
            let since = Self.milliseconds(now.addingTimeInterval(-window))
            try db.execute(sql: "DELETE FROM throttle_events WHERE key = ? AND time < ?", arguments: [key, since])
            let counted = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM throttle_events WHERE key = ?", arguments: [key]) ?? 0
            guard counted + count <= limit else { return false }
            for _ in 0..<count {
                try db.execute(sql: "INSERT INTO throttle_events (key, time) VALUES (?, ?)", arguments: [key, Self.milliseconds(now)])
            }
            return true
        }
    }
}
