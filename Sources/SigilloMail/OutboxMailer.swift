import Foundation
import SigilloDomain

/// The mailer of the server: writes the mail to the store's outbox and wakes the dispatcher, which delivers it
/// (through the SMTP relay, or to the development file) and retries until the relay takes it.
public struct OutboxMailer: Mailer {
    let store: any MailOutboxStore
    let clock: ServiceClock
    let dispatcher: MailDispatcher?

    /// - Parameter dispatcher: woken after each mail; nil when another node (or a later start) delivers.
    public init(store: any MailOutboxStore, clock: ServiceClock = .system, dispatcher: MailDispatcher?) {
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
