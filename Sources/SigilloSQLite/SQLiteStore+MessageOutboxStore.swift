import Foundation
import GRDB
import SigilloDomain

/// Outgoing SMS (and development mail) messages (`outbox`).
extension SQLiteStore: MessageOutboxStore {
    public func enqueueMessage(_ message: OutgoingMessage) async throws {
        try await self.write { db in
            try db.execute(
                sql: "INSERT INTO outbox (channel, recipient, subject, body, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [message.channel, message.recipient, message.subject, message.body, Self.seconds(message.createdAt)])
        }
    }

    public func pendingMessages() async throws -> [OutgoingMessage] {
        try await self.database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE sent_at IS NULL ORDER BY id").map {
                OutgoingMessage(channel: $0["channel"], recipient: $0["recipient"], subject: $0["subject"], body: $0["body"], createdAt: Self.date($0["created_at"]))
            }
        }
    }
}
