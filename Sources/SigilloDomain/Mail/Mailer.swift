import Foundation

/// A mail's content as the domain writes it (see `MailTemplates`).
public struct MailContent: Sendable, Equatable {
    /// What the mail is for (`invitation`, `password-reset`, …): recorded with it, never secret.
    public var kind: String
    public var subject: String
    public var body: String

    public init(kind: String, subject: String, body: String) {
        self.kind = kind
        self.subject = subject
        self.body = body
    }
}

/// Sends mail to holders. `send` returns once the mail is safely queued, not when it is delivered.
public protocol Mailer: Sendable {
    /// - Throws: `SigilloError.invalidRequest` for an invalid address.
    func send(to recipient: String, subject: String, body: String) async throws
    /// - Throws: `SigilloError.invalidRequest` for an invalid address.
    func send(_ content: MailContent, to recipient: String) async throws
}

extension Mailer {
    public func send(to recipient: String, subject: String, body: String) async throws {
        try await self.send(MailContent(kind: "message", subject: subject, body: body), to: recipient)
    }
}

/// Mail handed to a `Notifier` as a message on the `email` channel (the development outbox file, or a test's
/// capturing notifier); the server uses `OutboxMailer`.
public struct NotifierMailer: Mailer {
    let notifier: any Notifier
    let clock: ServiceClock

    public init(notifier: any Notifier, clock: ServiceClock = .system) {
        self.notifier = notifier
        self.clock = clock
    }

    public func send(_ content: MailContent, to recipient: String) async throws {
        try await self.notifier.send(OutgoingMessage(channel: "email", recipient: recipient, subject: content.subject, body: content.body, createdAt: self.clock.now()))
    }
}
