import Foundation
import GRDB
import SigilloDomain

/// The mail outbox (`mail_outbox`, times in milliseconds): claims are leases held by one dispatcher.
extension SQLiteStore: MailOutboxStore {
    public func enqueueMail(_ mail: QueuedMail) async throws {
        try await self.write { db in
            try db.execute(
                sql: """
                    INSERT INTO mail_outbox (id, kind, recipient, subject, body, created_at, status, attempts, next_attempt_at, last_error, finished_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [mail.id, mail.kind, mail.recipient, mail.subject, mail.body, Self.milliseconds(mail.createdAt), mail.status.rawValue,
                            mail.attempts, Self.milliseconds(mail.nextAttemptAt), mail.lastError, mail.finishedAt.map(Self.milliseconds)])
        }
    }

    public func claimDueMails(now: Date, owner: String, leaseUntil: Date, limit: Int) async throws -> [QueuedMail] {
        let nowMS = Self.milliseconds(now)
        return try await self.write { db in
            // One write transaction: the SELECT and the UPDATE see the same rows, and the UPDATE re-checks each row's state.
            let due = """
                ((status = 'pending' AND next_attempt_at <= ?) OR (status = 'sending' AND lease_until <= ?))
                """
            let ids = try String.fetchAll(
                db, sql: "SELECT id FROM mail_outbox WHERE \(due) ORDER BY next_attempt_at, rowid LIMIT ?", arguments: [nowMS, nowMS, max(0, limit)])
            var claimed: [QueuedMail] = []
            for id in ids {
                try db.execute(
                    sql: "UPDATE mail_outbox SET status = 'sending', lease_owner = ?, lease_until = ?, attempts = attempts + 1 WHERE id = ? AND \(due)",
                    arguments: [owner, Self.milliseconds(leaseUntil), id, nowMS, nowMS])
                guard db.changesCount == 1, let row = try Row.fetchOne(db, sql: "SELECT * FROM mail_outbox WHERE id = ?", arguments: [id]) else { continue }
                claimed.append(Self.mail(row))
            }
            return claimed
        }
    }

    public func markMailSent(id: String, owner: String, at time: Date) async throws -> Bool {
        try await self.finishMailClaim(id: id, owner: owner, set: "status = 'sent', finished_at = ?, last_error = NULL", arguments: [Self.milliseconds(time)])
    }

    public func markMailRetry(id: String, owner: String, nextAttempt: Date, error: String) async throws -> Bool {
        try await self.finishMailClaim(id: id, owner: owner, set: "status = 'pending', next_attempt_at = ?, last_error = ?",
                                       arguments: [Self.milliseconds(nextAttempt), error])
    }

    public func markMailFailed(id: String, owner: String, at time: Date, error: String) async throws -> Bool {
        try await self.finishMailClaim(id: id, owner: owner, set: "status = 'failed', finished_at = ?, last_error = ?", arguments: [Self.milliseconds(time), error])
    }

    /// Ends `owner`'s claim on a mail with `set` (compare-and-set on owner and status).
    private func finishMailClaim(id: String, owner: String, set: String, arguments: StatementArguments) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE mail_outbox SET \(set), lease_owner = NULL, lease_until = NULL WHERE id = ? AND status = 'sending' AND lease_owner = ?",
                arguments: arguments + [id, owner])
            return db.changesCount == 1
        }
    }

    public func nextMailDue() async throws -> Date? {
        try await self.database.read { db in
            try Int64.fetchOne(db, sql: """
                SELECT MIN(due) FROM (
                    SELECT MIN(next_attempt_at) AS due FROM mail_outbox WHERE status = 'pending'
                    UNION ALL SELECT MIN(lease_until) FROM mail_outbox WHERE status = 'sending')
                """).map(Self.millisecondDate)
        }
    }

    public func mails() async throws -> [QueuedMail] {
        try await self.database.read { db in try Row.fetchAll(db, sql: "SELECT * FROM mail_outbox ORDER BY created_at, rowid").map(Self.mail) }
    }
}
