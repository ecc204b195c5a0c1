import Foundation

/// A message for a holder: an SMS code (`channel` "sms", to the mobile number) or a mail (`channel` "email",
/// with a subject).
public struct OutgoingMessage: Sendable, Equatable, Codable {
    public var channel: String
    public var recipient: String
    public var subject: String?
    public var body: String
    public var createdAt: Date

    public init(channel: String, recipient: String, subject: String? = nil, body: String, createdAt: Date) {
        self.channel = channel
        self.recipient = recipient
        self.subject = subject
        self.body = body
        self.createdAt = createdAt
    }
}

/// Sends messages to holders. A real SMS gateway is an adapter implementing this.
public protocol Notifier: Sendable {
    func send(_ message: OutgoingMessage) async throws
}

/// The development notifier: each message is one JSON line in a file a developer can `tail -f` (mode 600), and nowhere
/// else. Never used for production traffic.
///
/// The database never holds a message: an SMS carries a code, and the store keeps codes only as digests. What was sent
/// to whom is in the audit log (`otp.sms.send`), without the text.
public struct OutboxNotifier: Notifier {
    let file: String?

    /// - Parameter file: where the lines go; nil drops the messages (benchmarks).
    public init(file: String?) {
        self.file = file
    }

    public func send(_ message: OutgoingMessage) async throws {
        guard let file = self.file else { return }
        try JSONLinesFile.append(message, to: file)
    }
}

/// A development file of JSON lines (`tail -f`-able), private to the user (mode 600, also when an earlier version
/// made it readable by others).
public enum JSONLinesFile {
    public static func append(_ value: some Encodable, to file: String) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        var line = try encoder.encode(value)
        line.append(0x0A)
        if !FileManager.default.fileExists(atPath: file) {
            _ = FileManager.default.createFile(atPath: file, contents: nil, attributes: [.posixPermissions: 0o600])
        } else if let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int, mode & 0o077 != 0 {
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: line)
    }
}
