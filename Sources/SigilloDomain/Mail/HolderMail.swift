import Foundation

/// Mail to a holder's registered address, and the links it carries to the public listener.
struct HolderMail: Sendable {
    let mailer: any Mailer
    /// The server's public URL (`DomainSettings.publicBaseURL`).
    let publicBaseURL: String

    /// Queues a mail to the holder's registered address (the mail outbox delivers it, retrying until the relay takes it).
    func send(to holder: Holder, _ content: MailContent) async throws {
        try await self.mailer.send(content, to: holder.email)
    }

    /// An address on the public listener, e.g. `/renew`.
    func publicURL(_ path: String) -> String {
        var base = self.publicBaseURL
        while base.hasSuffix("/") { base.removeLast() }
        return base + path
    }

    /// A link on the public listener carrying a single-use code.
    func link(_ path: String, code: String) -> String {
        self.publicURL(path) + "?code=" + code
    }
}
