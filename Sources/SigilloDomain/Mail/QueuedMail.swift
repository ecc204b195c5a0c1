import Foundation

/// A mail in the outbox table: written before any delivery attempt, so a relay that is down loses nothing.
public struct QueuedMail: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable {
        /// Waiting for `nextAttemptAt`.
        case pending
        /// Claimed by a dispatcher until its lease ends (a dispatcher that dies mid-send leaves it to the next one).
        case sending
        /// Accepted by the relay.
        case sent
        /// Given up: the relay refused it for good, or it stayed undeliverable too long.
        case failed
    }

    /// A UUID; also the local part of the Message-ID.
    public var id: String
    /// What the mail is for (`invitation`, `password-reset`, …): for the audit log and administration, never secret.
    public var kind: String
    public var recipient: String
    public var subject: String
    /// The text, with its links; empty once the mail is sent or given up (the store keeps no body after that, and
    /// seals it while it waits).
    public var body: String
    public var createdAt: Date
    public var status: Status
    /// Delivery attempts started so far (a claim counts one).
    public var attempts: Int
    public var nextAttemptAt: Date
    /// The last failure (an SMTP reply or a connection error; never the body).
    public var lastError: String?
    /// When it was sent or given up.
    public var finishedAt: Date?

    public init(id: String = UUID().uuidString.lowercased(), kind: String, recipient: String, subject: String, body: String, createdAt: Date,
                status: Status = .pending, attempts: Int = 0, nextAttemptAt: Date? = nil, lastError: String? = nil, finishedAt: Date? = nil) {
        self.id = id
        self.kind = kind
        self.recipient = recipient
        self.subject = subject
        self.body = body
        self.createdAt = createdAt
        self.status = status
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt ?? createdAt
        self.lastError = lastError
        self.finishedAt = finishedAt
    }
}
