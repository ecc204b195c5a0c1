import SigilloDomain
import Foundation

/// Hands messages to the outside world; one result per message, in order.
public protocol MailTransport: Sendable {
    /// Delivers `messages`, starting none once `budget` has passed (those fail with a transient `.timeout`), so a
    /// batch ends well within its claim on the outbox rows.
    func deliver(_ messages: [MailMessage], within budget: Duration) async -> [Result<Void, SMTPError>]
}

extension SMTPClient: MailTransport, CustomStringConvertible {
    /// The relay and TLS mode, never the password.
    public var description: String { self.configuration.description }

    public func deliver(_ messages: [MailMessage], within budget: Duration) async -> [Result<Void, SMTPError>] {
        await self.send(messages, within: budget)
    }
}

/// The development transport when no relay is configured: each message is one JSON line in a file
/// (`var/mail.jsonl`) a developer can read the activation link from. Never for production.
public struct MailFileTransport: MailTransport, CustomStringConvertible {
    public let file: String
    public var description: String { "file \(self.file) (development, no relay)" }

    public init(file: String) {
        self.file = file
    }

    struct Line: Encodable {
        let messageID: String
        let date: Date
        let from: String
        let to: String
        let subject: String
        let body: String
    }

    public func deliver(_ messages: [MailMessage], within budget: Duration) async -> [Result<Void, SMTPError>] {
        messages.map { message in
            Result {
                try JSONLinesFile.append(
                    Line(messageID: message.messageID, date: message.date, from: message.from.address, to: message.to.address,
                         subject: message.subject, body: message.body),
                    to: self.file)
            }.mapError { SMTPError(.connectionFailed, "cannot write \(self.file): \($0)") }
        }
    }
}
