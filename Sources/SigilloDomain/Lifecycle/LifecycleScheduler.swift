import Foundation
import Logging
import ServiceLifecycle

/// Runs the lifecycle jobs every `interval` (and once at start) until cancelled; failures are logged and retried
/// at the next tick. The server runs one; tests call `CredentialLifecycle.runLifecycleJobs` with a moved clock instead.
public struct LifecycleScheduler: Service {
    let lifecycle: CredentialLifecycle
    let crl: any RevocationList
    let interval: Duration
    let logger: Logger

    public init(lifecycle: CredentialLifecycle, crl: any RevocationList, interval: Duration = .seconds(3600), logger: Logger) {
        self.lifecycle = lifecycle
        self.crl = crl
        self.interval = interval
        self.logger = logger
    }

    /// Stops at the group's graceful shutdown (or when its task is cancelled).
    public func run() async {
        await cancelWhenGracefulShutdown { await self.loop() }
    }

    private func loop() async {
        while !Task.isCancelled {
            do {
                let report = try await self.lifecycle.runLifecycleJobs()
                if report != LifecycleReport() {
                    self.logger.info("lifecycle jobs", metadata: ["reminders": "\(report.remindersSent)", "expired": "\(report.expiredNotices)", "states": "\(report.stateChanges)"])
                }
                _ = try? await self.crl.currentList()
            } catch {
                self.logger.error("lifecycle jobs failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: self.interval)
        }
    }
}

/// Its name only: ServiceLifecycle logs each service as `"\(service)"`, and the default description would print every
/// stored property, nested (certificates, keys' handles, whatever a later field holds) into the log.
extension LifecycleScheduler: CustomStringConvertible {
    public var description: String { "LifecycleScheduler" }
}
