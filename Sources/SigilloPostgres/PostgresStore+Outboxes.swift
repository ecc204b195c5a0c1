import Foundation
import PostgresNIO
import SigilloDomain

/// The mail outbox: claims are leases held by one dispatcher (of any node). Bodies are sealed while they wait and
/// deleted once sent or given up, as in the SQLite store.
extension PostgresStore: MailOutboxStore {
    public func enqueueMail(_ mail: QueuedMail) async throws {
        let sealed = try self.sealsSecrets ? self.seal(Array(mail.body.utf8), Self.mailContext(id: mail.id, recipient: mail.recipient)) : nil
        let clear = sealed == nil ? mail.body : ""
        try await self.execute("""
            INSERT INTO mail_outbox (id, kind, recipient, subject, body, sealed_body, created_at, status, attempts, next_attempt_at, last_error, finished_at)
            VALUES (\(mail.id), \(mail.kind), \(mail.recipient), \(mail.subject), \(clear), \(sealed), \(Self.milliseconds(mail.createdAt)), \(mail.status.rawValue),
                    \(Int64(mail.attempts)), \(Self.milliseconds(mail.nextAttemptAt)), \(mail.lastError), \(mail.finishedAt.map(Self.milliseconds)))
            """)
    }

    public func claimDueMails(now: Date, owner: String, leaseUntil: Date, limit: Int) async throws -> [QueuedMail] {
        let nowMS = Self.milliseconds(now)
        let vaultFilter = self.sealsSecrets ? "" : " AND sealed_body IS NULL"
        // SKIP LOCKED: dispatchers of several nodes claiming at once each take different mails, never waiting on each other.
        var query = PostgresQuery(unsafeSQL: """
            UPDATE mail_outbox SET status = 'sending', lease_owner = $1, lease_until = $2, attempts = attempts + 1
            WHERE id IN (
                SELECT id FROM mail_outbox
                WHERE ((status = 'pending' AND next_attempt_at <= $3) OR (status = 'sending' AND lease_until <= $3))\(vaultFilter)
                ORDER BY next_attempt_at, ord LIMIT $4 FOR UPDATE SKIP LOCKED)
            RETURNING *
            """)
        query.binds.append(owner)
        query.binds.append(Self.milliseconds(leaseUntil))
        query.binds.append(nowMS)
        query.binds.append(Int64(max(0, limit)))
        let rows = try await self.rows(query).sorted { (try? $0.integer("next_attempt_at")) ?? 0 < (try? $1.integer("next_attempt_at")) ?? 0 }
        var claimed: [QueuedMail] = []
        for row in rows {
            do {
                claimed.append(try self.queuedMail(row))
            } catch {
                // Sealed for another row or recipient, or with another key: never sent, given up at once.
                try await self.execute("""
                    UPDATE mail_outbox SET status = 'failed', finished_at = \(nowMS), body = '', sealed_body = NULL, lease_owner = NULL, lease_until = NULL,
                        last_error = 'the sealed body does not open for this mail (moved, readdressed, or another token''s key)'
                    WHERE id = \(try row.text("id"))
                    """)
            }
        }
        return claimed
    }

    public func markMailSent(id: String, owner: String, at time: Date) async throws -> Bool {
        try await self.first("""
            UPDATE mail_outbox SET status = 'sent', finished_at = \(Self.milliseconds(time)), last_error = NULL, body = '', sealed_body = NULL,
                lease_owner = NULL, lease_until = NULL
            WHERE id = \(id) AND status = 'sending' AND lease_owner = \(owner) RETURNING 1
            """) != nil
    }

    public func markMailRetry(id: String, owner: String, nextAttempt: Date, error: String) async throws -> Bool {
        try await self.first("""
            UPDATE mail_outbox SET status = 'pending', next_attempt_at = \(Self.milliseconds(nextAttempt)), last_error = \(error), lease_owner = NULL, lease_until = NULL
            WHERE id = \(id) AND status = 'sending' AND lease_owner = \(owner) RETURNING 1
            """) != nil
    }

    public func markMailFailed(id: String, owner: String, at time: Date, error: String) async throws -> Bool {
        try await self.first("""
            UPDATE mail_outbox SET status = 'failed', finished_at = \(Self.milliseconds(time)), last_error = \(error), body = '', sealed_body = NULL,
                lease_owner = NULL, lease_until = NULL
            WHERE id = \(id) AND status = 'sending' AND lease_owner = \(owner) RETURNING 1
            """) != nil
    }

    public func nextMailDue() async throws -> Date? {
        try await self.first("""
            SELECT LEAST((SELECT MIN(next_attempt_at) FROM mail_outbox WHERE status = 'pending'),
                         (SELECT MIN(lease_until) FROM mail_outbox WHERE status = 'sending')) AS due
            """).flatMap { try $0.optionalInteger("due") }.map(Self.millisecondDate)
    }

    public func mailCounts() async throws -> [QueuedMail.Status: Int] {
        let rows = try await self.rows("SELECT status, count(*) AS n FROM mail_outbox GROUP BY status")
        var counts: [QueuedMail.Status: Int] = [:]
        for row in rows {
            if let status = QueuedMail.Status(rawValue: try row.text("status")) { counts[status] = Int(try row.integer("n")) }
        }
        return counts
    }

    public func mails() async throws -> [QueuedMail] {
        try await self.rows("SELECT * FROM mail_outbox ORDER BY created_at, ord").map(self.queuedMail)
    }

    /// Seals the waiting bodies a store without the vault left in clear (run at each opening with the vault).
    func sealClearMailBodies(_ connection: PostgresConnection) async throws {
        for row in try await Self.rows(connection, "SELECT id, recipient, body FROM mail_outbox WHERE sealed_body IS NULL AND body != '' FOR UPDATE") {
            let id = try row.text("id")
            let sealed = try self.seal(Array(try row.text("body").utf8), Self.mailContext(id: id, recipient: try row.text("recipient")))
            try await Self.execute(connection, "UPDATE mail_outbox SET body = '', sealed_body = \(sealed) WHERE id = \(id)")
        }
        try await Self.execute(connection, """
            UPDATE mail_outbox SET body = '', sealed_body = NULL WHERE status IN ('sent', 'failed') AND (body != '' OR sealed_body IS NOT NULL)
            """)
    }

    /// What a mail's sealed body is bound to (the same as the SQLite store's: a copied installation still opens them).
    static func mailContext(id: String, recipient: String) -> String {
        "mail_outbox/\(id)/\(recipient)"
    }

    private func queuedMail(_ row: PostgresRandomAccessRow) throws -> QueuedMail {
        var mail = try Self.mail(row)
        if let sealed = try row.optionalData("sealed_body") {
            mail.body = String(decoding: try self.open(sealed, Self.mailContext(id: mail.id, recipient: mail.recipient)), as: UTF8.self)
        }
        return mail
    }
}

/// Abuse counters: one transaction per admission holding an advisory lock on the key, so concurrent admissions of one
/// key (from any node) count one after the other.
extension PostgresStore: ThrottleStore {
    public func admit(throttle key: String, now: Date, window: TimeInterval, limit: Int, count: Int) async throws -> Bool {
        let since = Self.milliseconds(now.addingTimeInterval(-window))
        let (time, expires) = (Self.milliseconds(now), Self.milliseconds(now.addingTimeInterval(window)))
        return try await self.transaction { connection in
            try await Self.execute(connection, "SELECT pg_advisory_xact_lock(hashtextextended(\("throttle/" + key), 0))")
            try await Self.execute(connection, "DELETE FROM throttle_events WHERE key = \(key) AND time < \(since)")
            let counted = try await Self.first(connection, "SELECT COUNT(*) AS n FROM throttle_events WHERE key = \(key)").map { try $0.integer("n") } ?? 0
            guard Int(counted) + count <= limit else { return false }
            try await Self.execute(connection, """
                INSERT INTO throttle_events (key, time, expires_at) SELECT \(key), \(time), \(expires) FROM generate_series(1, \(Int64(count)))
                """)
            return true
        }
    }

    public func purgeThrottles(now: Date) async throws -> Int {
        try await self.rows("DELETE FROM throttle_events WHERE expires_at < \(Self.milliseconds(now)) RETURNING 1").count
    }
}

/// The CA's shared state: CRL numbers, one atomic upsert (only ever growing, across nodes).
extension PostgresStore: PKIStateStore {
    public func nextCRLNumber() async throws -> Int64 {
        try await self.first("""
            INSERT INTO crl_state AS c (id, last_number) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET last_number = c.last_number + 1 RETURNING last_number
            """).map { try $0.integer("last_number") } ?? 1
    }
}
