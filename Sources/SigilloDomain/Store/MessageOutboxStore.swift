import Foundation

/// Outgoing SMS (and development mail) messages waiting for a gateway.
public protocol MessageOutboxStore: Sendable {
    func enqueueMessage(_ message: OutgoingMessage) async throws
    func pendingMessages() async throws -> [OutgoingMessage]
}
