import Foundation
import GRDB
import SigilloDomain

/// The mail outbox (`mail_outbox`, times in milliseconds): claims are leases held by one dispatcher.
///
/// Bodies carry activation and reset links, so none stays readable in the file: a waiting body is sealed with the
/// seed vault (`sealed_body`, bound to the mail's id and recipient: moved to another row, or readdressed, it no longer
/// opens) and deleted once the mail is sent or given up. A store opened without the vault (tools and tests that hold no
/// token; never the server) can only keep a waiting body in clear (`body`): the next opening with the vault seals it
/// (`sealClearMailBodies`), and such a store never claims a sealed mail it could not open.
extension SQLiteStore: MailOutboxStore {
    public func enqueueMail(_ mail: QueuedMail) async throws {
        let sealed = try self.sealsSecrets ? self.seal(Array(mail.body.utf8), Self.mailContext(id: mail.id, recipient: mail.recipient)) : nil
        let clear = sealed == nil ? mail.body : ""
        try await self.write { db in
            try db.execute(
                sql: """
                    INSERT INTO mail_outbox (id, kind, recipient, subject, body, sealed_body, created_at, status, attempts, next_attempt_at, last_error, finished_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [mail.id, mail.kind, mail.recipient, mail.subject, clear, sealed, Self.milliseconds(mail.createdAt), mail.status.rawValue,
                            mail.attempts, Self.milliseconds(mail.nextAttemptAt), mail.lastError, mail.finishedAt.map(Self.milliseconds)])
        }
    }

    public func claimDueMails(now: Date, owner: String, leaseUntil: Date, limit: Int) async throws -> [QueuedMail] {
        let nowMS = Self.milliseconds(now)
        // Without the vault, a sealed body cannot be sent: left for a dispatcher that has it.
        let due = """
            ((status = 'pending' AND next_attempt_at <= ?) OR (status = 'sending' AND lease_until <= ?))\(self.sealsSecrets ? "" : " AND sealed_body IS NULL")
            """
        return try await self.write { db in
            // One write transaction: the SELECT and the UPDATE see the same rows, and the UPDATE re-checks each row's state.
            let ids = try String.fetchAll(
                db, sql: "SELECT id FROM mail_outbox WHERE \(due) ORDER BY next_attempt_at, rowid LIMIT ?", arguments: [nowMS, nowMS, max(0, limit)])
            var claimed: [QueuedMail] = []
            for id in ids {
                try db.execute(
                    sql: "UPDATE mail_outbox SET status = 'sending', lease_owner = ?, lease_until = ?, attempts = attempts + 1 WHERE id = ? AND \(due)",
                    arguments: [owner, Self.milliseconds(leaseUntil), id, nowMS, nowMS])
                guard db.changesCount == 1, let row = try Row.fetchOne(db, sql: "SELECT * FROM mail_outbox WHERE id = ?", arguments: [id]) else { continue }
                do {
                    claimed.append(try self.queuedMail(row))
                } catch {
                    // Sealed for another row or recipient, or with another key: never sent, given up at once.
                    try db.execute(
                        sql: """
                            UPDATE mail_outbox SET status = 'failed', finished_at = ?, last_error = ?, body = '', sealed_body = NULL, lease_owner = NULL,
                                lease_until = NULL WHERE id = ?
                            """,
                        arguments: [nowMS, "the sealed body does not open for this mail (moved, readdressed, or another token's key)", id])
                }
            }
            return claimed
        }
    }

    public func markMailSent(id: String, owner: String, at time: Date) async throws -> Bool {
        try await self.finishMailClaim(id: id, owner: owner, set: "status = 'sent', finished_at = ?, last_error = NULL, \(Self.purgeBody)",
                                       arguments: [Self.milliseconds(time)])
    }

    public func markMailRetry(id: String, owner: String, nextAttempt: Date, error: String) async throws -> Bool {
        try await self.finishMailClaim(id: id, owner: owner, set: "status = 'pending', next_attempt_at = ?, last_error = ?",
                                       arguments: [Self.milliseconds(nextAttempt), error])
    }

    public func markMailFailed(id: String, owner: String, at time: Date, error: String) async throws -> Bool {
        try await self.finishMailClaim(id: id, owner: owner, set: "status = 'failed', finished_at = ?, last_error = ?, \(Self.purgeBody)",
                                       arguments: [Self.milliseconds(time), error])
    }

    /// A mail sent or given up keeps its kind, recipient, subject, times and error, never its body (the zeroed
    /// `secure_delete` pages leave nothing behind).
    private static let purgeBody = "body = '', sealed_body = NULL"

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

    /// Every mail, with its body while it waits (opened with the vault) and an empty body once sent or given up.
    ///
    /// - Throws: `internalError` for a sealed body when the store was opened without the vault.
    public func mailCounts() async throws -> [QueuedMail.Status: Int] {
        let rows = try await self.database.read { db in try Row.fetchAll(db, sql: "SELECT status, count(*) AS n FROM mail_outbox GROUP BY status") }
        return Dictionary(uniqueKeysWithValues: rows.compactMap { row in
            QueuedMail.Status(rawValue: row["status"]).map { ($0, row["n"] as Int) }
        })
    }

    public func mails() async throws -> [QueuedMail] {
        let rows = try await self.database.read { db in try Row.fetchAll(db, sql: "SELECT * FROM mail_outbox ORDER BY created_at, rowid") }
        return try rows.map(self.queuedMail)
    }

    /// Seals the waiting bodies a store without the vault left in clear. Run at each opening with the vault.
    /// - Returns: whether any was sealed (their clear pages are then checkpointed out of the write-ahead log).
    func sealClearMailBodies(_ db: Database) throws -> Bool {
        let rows = try Row.fetchAll(db, sql: "SELECT id, recipient, body FROM mail_outbox WHERE sealed_body IS NULL AND body != ''")
        for row in rows {
            let id: String = row["id"]
            let sealed = try self.seal(Array((row["body"] as String).utf8), Self.mailContext(id: id, recipient: row["recipient"]))
            try db.execute(sql: "UPDATE mail_outbox SET body = '', sealed_body = ? WHERE id = ?", arguments: [sealed, id])
        }
        // A finished mail's clear body (none should be left) goes too.
        try db.execute(sql: "UPDATE mail_outbox SET \(Self.purgeBody) WHERE status IN ('sent', 'failed') AND (body != '' OR sealed_body IS NOT NULL)")
        return !rows.isEmpty || db.changesCount > 0
    }

    /// What a mail's sealed body is bound to.
    static func mailContext(id: String, recipient: String) -> String {
        "mail_outbox/\(id)/\(recipient)"
    }

    /// A row as a mail, its sealed body opened.
    private func queuedMail(_ row: Row) throws -> QueuedMail {
        var mail = Self.mail(row)
        if let sealed = row["sealed_body"] as Data? {
            mail.body = String(decoding: try self.open(sealed, Self.mailContext(id: mail.id, recipient: mail.recipient)), as: UTF8.self)
        }
        return mail
    }
}
