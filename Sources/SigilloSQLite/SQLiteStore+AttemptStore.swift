import Foundation
import GRDB
import SigilloDomain

/// Attempt reservation: one upsert that counts an attempt unless the limit is reached (`RETURNING` the new count).
extension SQLiteStore: AttemptStore {
    public func reserveAttempt(holderID: String, secret: SecretKind, limit: Int, now: Date, lease: TimeInterval) async throws -> AttemptReservation {
        let (now, until) = (Self.milliseconds(now), Self.milliseconds(now.addingTimeInterval(lease)))
        return try await self.write { db in
            // In flight = 0 when the last lease ran out (whoever held it died mid-check).
            let counted = try Int.fetchOne(
                db.cachedStatement(sql: """
                    INSERT INTO secret_attempts (holder_id, secret, failures, inflight, inflight_until) VALUES (?, ?, 0, 1, ?)
                    ON CONFLICT (holder_id, secret) DO UPDATE
                        SET inflight = (CASE WHEN inflight_until < ? THEN 0 ELSE inflight END) + 1, inflight_until = excluded.inflight_until
                        WHERE failures + (CASE WHEN inflight_until < ? THEN 0 ELSE inflight END) < ?
                    RETURNING inflight
                    """),
                arguments: [holderID, secret.rawValue, until, now, now, limit])
            if counted != nil { return .reserved }
            let failures = try Int.fetchOne(db, sql: "SELECT failures FROM secret_attempts WHERE holder_id = ? AND secret = ?", arguments: [holderID, secret.rawValue]) ?? 0
            return failures >= limit ? .locked : .busy
        }
    }

    public func resolveAttempt(holderID: String, secret: SecretKind, right: Bool) async throws -> Int {
        try await self.write { db in
            try Int.fetchOne(
                db.cachedStatement(sql: """
                    UPDATE secret_attempts SET failures = CASE WHEN ? THEN 0 ELSE failures + 1 END, inflight = MAX(inflight - 1, 0)
                    WHERE holder_id = ? AND secret = ? RETURNING failures
                    """),
                arguments: [right, holderID, secret.rawValue]) ?? 0
        }
    }

    public func clearAttempts(holderID: String, secrets: Set<SecretKind>) async throws {
        guard !secrets.isEmpty else { return }
        try await self.write { db in
            for secret in secrets {
                try Self.clearAttempts(holderID: holderID, secret: secret, db: db)
            }
        }
    }

    /// Clears a secret's failures inside another write (a new user code or device, a password reset); checks in
    /// flight keep their places.
    static func clearAttempts(holderID: String, secret: SecretKind, db: Database) throws {
        try db.execute(sql: "UPDATE secret_attempts SET failures = 0 WHERE holder_id = ? AND secret = ?", arguments: [holderID, secret.rawValue])
    }

    public func secretFailures(holderID: String) async throws -> SecretFailures {
        try await self.database.read { db in
            var failures = SecretFailures()
            for row in try Row.fetchAll(db, sql: "SELECT secret, failures FROM secret_attempts WHERE holder_id = ?", arguments: [holderID]) {
                switch SecretKind(rawValue: row["secret"]) {
                case .password: failures.password = row["failures"]
                case .otp: failures.otp = row["failures"]
                case .userCode: failures.userCode = row["failures"]
                case nil: break
                }
            }
            return failures
        }
    }
}
