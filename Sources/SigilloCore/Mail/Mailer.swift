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

/// The mailer of the server: writes the mail to the store's outbox and wakes the dispatcher, which delivers it
/// (through the SMTP relay, or to the development file) and retries until the relay takes it.
public struct OutboxMailer: Mailer {
    let store: any Store
    let clock: ServiceClock
    let dispatcher: MailDispatcher?

    /// - Parameter dispatcher: woken after each mail; nil when another node (or a later start) delivers.
    public init(store: any Store, clock: ServiceClock = .system, dispatcher: MailDispatcher?) {
        self.store = store
        self.clock = clock
        self.dispatcher = dispatcher
    }

    public func send(_ content: MailContent, to recipient: String) async throws {
        try await self.enqueue(content, to: recipient)
    }

    /// `send`, returning the queued mail's id (for an audit record that names it).
    @discardableResult
    public func enqueue(_ content: MailContent, to recipient: String) async throws -> String {
        let address = try MailAddress(recipient)
        let mail = QueuedMail(kind: content.kind, recipient: address.address, subject: content.subject, body: content.body, createdAt: self.clock.now())
        try await self.store.enqueueMail(mail)
        self.dispatcher?.wake()
        return mail.id
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
