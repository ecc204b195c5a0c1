import Foundation

/// The mail outbox (migration v7): written first, delivered by the dispatcher, never lost or sent twice by two dispatchers.
public protocol MailOutboxStore: Sendable {
    /// Stores a new pending mail, due at `mail.nextAttemptAt`.
    func enqueueMail(_ mail: QueuedMail) async throws
    /// Atomically claims up to `limit` due mails for `owner` until `leaseUntil` and counts an attempt on each: pending
    /// mails whose next attempt is at or before `now`, and mails whose claim ran out (a dispatcher that died mid-send),
    /// earliest due first. Two dispatchers, in one process or on two nodes, never hold the same mail.
    func claimDueMails(now: Date, owner: String, leaseUntil: Date, limit: Int) async throws -> [QueuedMail]
    /// Marks a claimed mail sent; false if `owner` no longer holds the claim.
    func markMailSent(id: String, owner: String, at time: Date) async throws -> Bool
    /// Gives a claimed mail back as pending, due again at `nextAttempt`, with the error; false if the claim was lost.
    func markMailRetry(id: String, owner: String, nextAttempt: Date, error: String) async throws -> Bool
    /// Marks a claimed mail failed for good with the error; false if the claim was lost.
    func markMailFailed(id: String, owner: String, at time: Date, error: String) async throws -> Bool
    /// The earliest time a mail falls due (a pending mail's next attempt, or a claim running out); nil when none waits.
    func nextMailDue() async throws -> Date?
    /// Every mail, oldest (then first queued) first (tests and administration).
    func mails() async throws -> [QueuedMail]
    /// How many mails are in each status now (one counting query; a status with none is left out). Metrics read it
    /// at each scrape: pending + sending is the backlog, failed the mails given up.
    func mailCounts() async throws -> [QueuedMail.Status: Int]
}
