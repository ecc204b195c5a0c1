import Foundation
import Logging
import ServiceLifecycle

/// Writes audit checkpoints (`AuditCheckpoints`) while the server runs: one at start, then whenever `every` records
/// were appended since the last one or `interval` seconds passed with any appended, looked at every `tick`; and a
/// last one at graceful shutdown. Failures are logged and retried at the next tick.
///
/// Put it first in the `ServiceGroup`: services stop in reverse order, so the shutdown checkpoint comes after the
/// listeners' last records.
public struct AuditCheckpointer: Service {
    let checkpoints: AuditCheckpoints
    let every: Int
    let interval: TimeInterval
    let tick: Duration
    let sleep: @Sendable (Duration) async throws -> Void
    let logger: Logger

    /// - Parameters:
    ///   - every: records after which a checkpoint is due.
    ///   - interval: seconds (of the service clock) after which a checkpoint is due if anything was appended.
    ///   - tick: how often it looks.
    ///   - sleep: waits one tick (`Task.sleep` by default; tests step it by hand).
    public init(checkpoints: AuditCheckpoints, every: Int = 1000, interval: TimeInterval = 300, tick: Duration = .seconds(5),
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }, logger: Logger) {
        self.checkpoints = checkpoints
        self.every = every
        self.interval = interval
        self.tick = tick
        self.sleep = sleep
        self.logger = logger
    }

    /// Runs until graceful shutdown (or cancellation), then writes the last checkpoint.
    public func run() async throws {
        await self.write(reason: "start")
        await cancelWhenGracefulShutdown { await self.loop() }
        await self.write(reason: "shutdown")
    }

    private func loop() async {
        while !Task.isCancelled {
            do {
                try await self.sleep(self.tick)
            } catch {
                return
            }
            do {
                if let reason = try await self.checkpoints.due(every: self.every, interval: self.interval) {
                    await self.write(reason: reason)
                }
            } catch {
                self.logger.error("audit checkpoint check failed", metadata: ["error": "\(error)"])
            }
        }
    }

    private func write(reason: String) async {
        do {
            if let record = try await self.checkpoints.checkpoint(reason: reason) {
                self.logger.debug("audit checkpoint", metadata: ["seq": "\(record.sequence)", "reason": "\(reason)"])
            }
        } catch {
            self.logger.error("audit checkpoint failed", metadata: ["reason": "\(reason)", "error": "\(error)"])
        }
    }
}

/// Its name only: ServiceLifecycle logs each service as `"\(service)"`, and the default description would print every
/// stored property, nested (certificates, keys' handles, whatever a later field holds) into the log.
extension AuditCheckpointer: CustomStringConvertible {
    public var description: String { "AuditCheckpointer" }
}
