import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Folds repeated refusals that anyone can cause into one audit row per interval, so the hash chain grows with time,
/// not with an attacker's request rate (300 anonymous `recovery.username` requests once added 306 rows).
///
/// Aggregated are the events of actor `anonymous` (unknown accounts, ignored recovery requests, rate-limited requests)
/// and every `throttled` outcome. Events are grouped by (actor, action, target, outcome, details), which for these
/// events are constants of the code, not caller input:
/// - the first event of a group is written at once, in full, so a new kind of refusal shows in the log immediately;
/// - the next ones within `interval` of it are only counted;
/// - when the interval is over (at the next event of the group, at `flush`, or at `flushAll` on shutdown), one row
///   with the same actor, action, target and outcome says how many more there were and when the first and last came
///   (`details`: `aggregated: 299 more from 2025-…Z to 2025-…Z; no activated holder`). A group that stays busy gets
///   one such row per interval; a group quiet for a whole interval is forgotten, so its next event is written in full.
///
/// Memory is bounded: past `maxGroups` groups, a new group's events fold into one group per (action, outcome) with
/// actor, target and details `*`.
public final class AuditAggregator: Sendable {
    /// The fields events are grouped by.
    struct Group: Hashable {
        var actor: String
        var action: String
        var target: String
        var outcome: String
        var details: String

        init(_ event: AuditEvent) {
            self.actor = event.actor
            self.action = event.action
            self.target = event.target
            self.outcome = event.outcome
            self.details = event.details
        }

        init(overflowOf event: AuditEvent) {
            self.actor = "*"
            self.action = event.action
            self.target = "*"
            self.outcome = event.outcome
            self.details = "*"
        }
    }

    /// One group's open interval: when it began, and the events counted (not written) since.
    struct Window {
        var start: Date
        var count = 0
        var first: Date?
        var last: Date?

        mutating func add(_ time: Date) {
            self.count += 1
            self.first = self.first ?? time
            self.last = time
        }
    }

    /// A summary row to write.
    struct Summary {
        var group: Group
        var window: Window
    }

    /// What `record` must do with one event.
    enum Decision {
        /// Write the event itself (the first of its group), after the summaries.
        case write([Summary])
        /// Counted; write these summaries of groups whose interval is over.
        case counted([Summary])
    }

    /// How long events of a group are counted before their summary row is written.
    public let interval: TimeInterval
    /// Most groups held at once.
    public let maxGroups: Int
    private let windows = Mutex<[Group: Window]>([:])

    public init(interval: TimeInterval = 60, maxGroups: Int = 1_000) {
        self.interval = interval
        self.maxGroups = max(1, maxGroups)
    }

    /// Whether `event` is one anyone can cause at will, to be aggregated.
    public static func aggregates(_ event: AuditEvent) -> Bool {
        event.actor == "anonymous" || event.outcome == "throttled"
    }

    /// Events counted and not yet written, over every group.
    public var pendingCount: Int {
        self.windows.withLock { $0.values.reduce(0) { $0 + $1.count } }
    }

    /// Counts `event` at `now`, and says what to write now.
    func admit(_ event: AuditEvent, at now: Date) -> Decision {
        self.windows.withLock { windows in
            var group = Group(event)
            if windows[group] == nil, windows.count >= self.maxGroups {
                group = Group(overflowOf: event)
            }
            guard var window = windows[group] else {
                windows[group] = Window(start: now)
                return .write([])
            }
            window.add(now)
            if now.timeIntervalSince(window.start) >= self.interval {
                windows[group] = Window(start: now)
                return .counted([Summary(group: group, window: window)])
            }
            windows[group] = window
            return .counted([])
        }
    }

    /// Closes the intervals that are over at `now` (every interval when `all`): the summaries to write. Groups that
    /// counted nothing in a whole interval are forgotten.
    func close(at now: Date, all: Bool) -> [Summary] {
        self.windows.withLock { windows in
            var summaries: [Summary] = []
            for (group, window) in windows where all || now.timeIntervalSince(window.start) >= self.interval {
                if window.count > 0 {
                    summaries.append(Summary(group: group, window: window))
                    windows[group] = all ? nil : Window(start: now)
                } else {
                    windows[group] = nil
                }
            }
            return summaries.sorted { ($0.window.first ?? $0.window.start) < ($1.window.first ?? $1.window.start) }
        }
    }

    /// The row that stands for a summary's events.
    static func event(_ summary: Summary) -> AuditEvent {
        let format = "yyyy-MM-dd'T'HH:mm:ss'Z'"
        let first = DateText.utc(summary.window.first ?? summary.window.start, format: format)
        let last = DateText.utc(summary.window.last ?? summary.window.start, format: format)
        let group = summary.group
        var details = "aggregated: \(summary.window.count) more from \(first) to \(last)"
        if !group.details.isEmpty { details += "; \(group.details)" }
        return AuditEvent(actor: group.actor, action: group.action, target: group.target, outcome: group.outcome, details: details)
    }
}

/// Writes the aggregated audit rows every `interval` and at shutdown (run it in the server's `ServiceGroup`, listed
/// before the listeners so it stops after them). Tests call `AuditLog.flushAggregated` with a moved clock instead.
public struct AuditAggregationService: Service {
    let audit: AuditLog
    let interval: Duration
    let logger: Logger

    public init(audit: AuditLog, interval: Duration = .seconds(10), logger: Logger) {
        self.audit = audit
        self.interval = interval
        self.logger = logger
    }

    public func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.interval)
                do {
                    try await self.audit.flushAggregated()
                } catch {
                    self.logger.error("aggregated audit rows not written", metadata: ["error": "\(error)"])
                }
            }
        }
        // In a task of its own: a cancelled run (not a graceful shutdown) must still write what it counted.
        let audit = self.audit
        do {
            try await Task { try await audit.flushAggregated(all: true) }.value
        } catch {
            self.logger.error("aggregated audit rows not written at shutdown", metadata: ["error": "\(error)"])
        }
    }
}

/// Its name only: ServiceLifecycle logs each service as `"\(service)"`, and the default description would print every
/// stored property, nested (certificates, keys' handles, whatever a later field holds) into the log.
extension AuditAggregationService: CustomStringConvertible {
    public var description: String { "AuditAggregationService" }
}
