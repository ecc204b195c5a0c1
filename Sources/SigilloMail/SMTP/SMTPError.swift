import SigilloDomain
/// One SMTP reply: the three-digit code and the text of every line (RFC 5321 §4.2).
public struct SMTPReply: Sendable, Equatable, CustomStringConvertible {
    public let code: Int
    public let lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    public var isPositive: Bool { (200..<400).contains(self.code) }
    public var isTransientFailure: Bool { (400..<500).contains(self.code) }
    public var isPermanentFailure: Bool { (500..<600).contains(self.code) }
    /// The first line, trimmed to a length safe for logs and the outbox table.
    public var description: String { "\(self.code) \(String((self.lines.first ?? "").prefix(200)))" }
}

/// Why a mail was not delivered: `isPermanent` says whether sending it again unchanged can ever work.
public struct SMTPError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// TCP connect failed (refused, unreachable, DNS): transient.
        case connectionFailed
        /// No reply within the configured time: transient.
        case timeout
        /// STARTTLS not offered though required, the handshake failed, or the relay's certificate did not verify:
        /// transient (a relay can be fixed; a downgrade attempt must not turn into a plain-text send).
        case tls
        /// The relay rejected the session (greeting, EHLO, AUTH): transient, since it concerns every mail alike
        /// (a wrong password or a relay in maintenance must not fail the whole queue for good).
        case sessionRejected
        /// The relay rejected this mail (MAIL FROM, RCPT TO, DATA): permanent for 5xx, transient for 4xx.
        case mailRejected
        /// The relay broke the protocol (malformed or unsolicited replies, connection closed): transient.
        case protocolViolation
        /// The mail cannot be sent as it is (invalid address): permanent.
        case invalidMail
    }

    public let kind: Kind
    /// The reply that caused it, if the relay answered.
    public let reply: SMTPReply?
    /// What happened, without secrets and without the mail's body.
    public let message: String

    public init(_ kind: Kind, _ message: String, reply: SMTPReply? = nil) {
        self.kind = kind
        self.message = message
        self.reply = reply
    }

    public var isPermanent: Bool {
        switch self.kind {
        case .invalidMail: return true
        case .mailRejected: return self.reply?.isPermanentFailure ?? false
        case .connectionFailed, .timeout, .tls, .sessionRejected, .protocolViolation: return false
        }
    }

    public var description: String {
        "\(self.kind.rawValue)\(self.isPermanent ? " (permanent)" : ""): \(self.message)\(self.reply.map { " [\($0)]" } ?? "")"
    }
}
