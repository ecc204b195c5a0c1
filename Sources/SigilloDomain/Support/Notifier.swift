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

/// The development notifier: messages go to the store's outbox table and, one JSON line each, to a file
/// a developer can `tail -f`. Never used for production traffic.
public struct OutboxNotifier: Notifier {
    let store: any MessageOutboxStore
    let file: String?

    public init(store: any MessageOutboxStore, file: String?) {
        self.store = store
        self.file = file
    }

    public func send(_ message: OutgoingMessage) async throws {
        try await self.store.enqueueMessage(message)
        guard let file = self.file else { return }
        try JSONLinesFile.append(message, to: file)
    }
}

/// A development file of JSON lines (`tail -f`-able), created private to the user (mode 600).
public enum JSONLinesFile {
    public static func append(_ value: some Encodable, to file: String) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        var line = try encoder.encode(value)
        line.append(0x0A)
        if !FileManager.default.fileExists(atPath: file) {
            _ = FileManager.default.createFile(atPath: file, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: line)
    }
}
