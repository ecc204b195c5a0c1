import SigilloDomain
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Delivers the mail outbox: claims due mails, hands them to the transport, marks each sent, retried (exponential
/// backoff, next attempt stored so a restart resumes) or failed (audited). Run it in the server's `ServiceGroup`;
/// tests call `deliverDue(now:)` directly with a clock of their own.
///
/// Nothing is lost: a mail is in the store before anyone tries to send it, and stays pending until the relay accepted
/// it. Nothing is sent twice by two dispatchers: each batch is claimed atomically for a lease longer than a batch can
/// take. The one window left is the relay accepting a mail and this process dying before the row is updated; the
/// mail is then sent again after the lease, with the same Message-ID.
public final class MailDispatcher: Service, Sendable {
    public struct Policy: Sendable, Equatable {
        /// The wait after the first failure; doubled after each further one, up to `maximumDelay`.
        public var initialDelay: TimeInterval = 30
        public var maximumDelay: TimeInterval = 3600
        /// A mail still undeliverable this long after it was written is given up (failed, audited).
        public var maximumAge: TimeInterval = 3 * 86_400
        /// Mails per SMTP session.
        public var batchSize = 10
        /// How long a claim holds; a batch stops starting new transactions at half of it.
        public var lease: TimeInterval = 1800
        /// The longest sleep of the run loop (mails written by another node are picked up within it).
        public var pollInterval: TimeInterval = 60

        public init() {}

        /// The wait before attempt `attempts + 1`, after `attempts` failed ones: 30 s, 1 min, 2 min, … at most 1 h.
        public func delay(afterAttempts attempts: Int) -> TimeInterval {
            min(self.maximumDelay, self.initialDelay * pow(2, Double(max(0, min(attempts, 40) - 1))))
        }
    }

    /// What one `deliverDue` did.
    public struct Report: Sendable, Equatable {
        public var sent = 0
        public var retried = 0
        public var failed = 0
        public init() {}
    }

    let store: any MailOutboxStore & AuditStore
    let transport: any MailTransport
    let from: MailAddress
    let policy: Policy
    let clock: ServiceClock
    let logger: Logger
    /// This dispatcher's name on the claims it takes.
    let owner = "dispatcher-" + UUID().uuidString.lowercased()
    private let wakeSignal = WakeSignal()
    private let delivered = DeliveryCounters()

    /// Outcomes of this dispatcher's delivery attempts since start: accepted by the relay, deferred for a retry,
    /// given up for good (the outbox's totals, across nodes, are the store's `mailCounts()`).
    public var deliveries: (sent: Int, retried: Int, failed: Int) {
        (self.delivered.sent.load(ordering: .relaxed), self.delivered.retried.load(ordering: .relaxed), self.delivered.failed.load(ordering: .relaxed))
    }

    public init(store: any MailOutboxStore & AuditStore, transport: any MailTransport, from: MailAddress, policy: Policy = Policy(), clock: ServiceClock = .system, logger: Logger) {
        self.store = store
        self.transport = transport
        self.from = from
        self.policy = policy
        self.clock = clock
        self.logger = logger
    }

    /// Asks the run loop to look at the outbox now (a mail was just written).
    public func wake() {
        self.wakeSignal.signal()
    }

    /// Delivers every mail due at `now`, batch after batch, until none is due.
    @discardableResult
    public func deliverDue(now: Date) async throws -> Report {
        var report = Report()
        while true {
            let mails = try await self.store.claimDueMails(
                now: now, owner: self.owner, leaseUntil: now.addingTimeInterval(self.policy.lease), limit: self.policy.batchSize)
            guard !mails.isEmpty else { return report }
            let domain = self.from.address.split(separator: "@").last.map(String.init) ?? "localhost"
            var sendable: [(mail: QueuedMail, message: MailMessage)] = []
            for mail in mails {
                guard let to = try? MailAddress(mail.recipient) else {
                    try await self.record(mail, result: .failure(SMTPError(.invalidMail, "invalid recipient address")), now: now, report: &report)
                    continue
                }
                sendable.append((mail, MailMessage(from: self.from, to: to, subject: mail.subject, body: mail.body, date: mail.createdAt,
                                                   messageID: "\(mail.id)@\(domain)")))
            }
            let results = await self.transport.deliver(sendable.map(\.message), within: .seconds(self.policy.lease / 2))
            for (index, item) in sendable.enumerated() {
                let result = index < results.count ? results[index] : .failure(SMTPError(.protocolViolation, "no result from the transport"))
                try await self.record(item.mail, result: result, now: now, report: &report)
            }
        }
    }

    private func record(_ mail: QueuedMail, result: Result<Void, SMTPError>, now: Date, report: inout Report) async throws {
        var metadata: Logger.Metadata = ["mail": "\(mail.id)", "kind": "\(mail.kind)", "attempt": "\(mail.attempts)"]
        switch result {
        case .success:
            guard try await self.store.markMailSent(id: mail.id, owner: self.owner, at: now) else { return self.lostClaim(mail) }
            report.sent += 1
            self.delivered.sent.add(1, ordering: .relaxed)
            self.logger.info("mail sent", metadata: metadata)
            try await self.store.audit(AuditEvent(actor: "mail", action: "mail.send", target: mail.id, outcome: "ok",
                                                  details: "kind=\(mail.kind) attempts=\(mail.attempts)"), at: now)
        case .failure(let error) where error.isPermanent || now.timeIntervalSince(mail.createdAt) >= self.policy.maximumAge:
            let reason = error.isPermanent ? "\(error)" : "gave up after \(mail.attempts) attempts: \(error)"
            guard try await self.store.markMailFailed(id: mail.id, owner: self.owner, at: now, error: reason) else { return self.lostClaim(mail) }
            report.failed += 1
            self.delivered.failed.add(1, ordering: .relaxed)
            metadata["error"] = "\(reason)"
            self.logger.error("mail failed", metadata: metadata)
            try await self.store.audit(AuditEvent(actor: "mail", action: "mail.send", target: mail.id, outcome: "failed",
                                                  details: "kind=\(mail.kind) attempts=\(mail.attempts) \(reason)"), at: now)
        case .failure(let error):
            let next = now.addingTimeInterval(self.policy.delay(afterAttempts: mail.attempts))
            guard try await self.store.markMailRetry(id: mail.id, owner: self.owner, nextAttempt: next, error: "\(error)") else { return self.lostClaim(mail) }
            report.retried += 1
            self.delivered.retried.add(1, ordering: .relaxed)
            metadata["error"] = "\(error)"
            metadata["next"] = "\(next)"
            self.logger.warning("mail delivery deferred", metadata: metadata)
        }
    }

    private func lostClaim(_ mail: QueuedMail) {
        self.logger.error("mail claim lost before its outcome was recorded (the lease is shorter than a batch)", metadata: ["mail": "\(mail.id)"])
    }

    /// Delivers due mails until the service group shuts down: after each round it sleeps until the next mail falls due,
    /// `wake()` or `pollInterval`, whichever comes first. Store or relay trouble is logged and retried, never fatal.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                var delay = self.policy.pollInterval
                do {
                    try await self.deliverDue(now: self.clock.now())
                    if let next = try await self.store.nextMailDue() {
                        delay = min(delay, max(0.1, next.timeIntervalSince(self.clock.now())))
                    }
                } catch {
                    self.logger.error("mail outbox unavailable", metadata: ["error": "\(error)"])
                }
                await self.wakeSignal.wait(upTo: .milliseconds(Int64(delay * 1000)))
            }
        }
    }
}

/// A wake-up call that is never lost: a signal while nobody waits makes the next wait return at once.
final class WakeSignal: Sendable {
    private let state = Mutex<(pending: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func signal() {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns on a signal (also one given before the call), after `delay`, or when the task is cancelled.
    func wait(upTo delay: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: delay)
                if !Task.isCancelled { self.signal() }
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let now = self.state.withLock { state -> Bool in
                        if state.pending {
                            state.pending = false
                            return true
                        }
                        state.waiter = continuation
                        return false
                    }
                    if now { continuation.resume() }
                }
            } onCancel: {
                self.signal()
            }
            group.cancelAll()
        }
    }
}

/// What `MailDispatcher.deliveries` reports.
final class DeliveryCounters: Sendable {
    let sent = Atomic<Int>(0)
    let retried = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
}
