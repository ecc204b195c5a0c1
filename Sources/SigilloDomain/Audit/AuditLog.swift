import Foundation

/// Appends security events to the audit chain, stamped with the service clock. Shared by every use case.
///
/// Refusals anyone can cause at will (actor `anonymous`, outcome `throttled`) go through `aggregator`: the first of a
/// kind is written at once, the rest summed up in one row per interval (see `AuditAggregator`).
public struct AuditLog: Sendable {
    let store: any AuditStore
    let clock: ServiceClock
    /// Shared by every copy of this log.
    public let aggregator: AuditAggregator

    public init(store: any AuditStore, clock: ServiceClock, aggregator: AuditAggregator = AuditAggregator()) {
        self.store = store
        self.clock = clock
        self.aggregator = aggregator
    }

    /// Records that `actor` did `action` on `target` with `outcome` (no secret in any field).
    public func record(_ actor: String, _ action: String, target: String, outcome: String, details: String = "") async throws {
        let event = AuditEvent(actor: actor, action: action, target: target, outcome: outcome, details: details)
        let now = self.clock.now()
        guard AuditAggregator.aggregates(event) else {
            try await self.store.audit(event, at: now)
            return
        }
        switch self.aggregator.admit(event, at: now) {
        case .write(let summaries):
            try await self.write(summaries, at: now)
            try await self.store.audit(event, at: now)
        case .counted(let summaries):
            try await self.write(summaries, at: now)
        }
    }

    /// Writes the summary rows of the aggregated events whose interval is over (all of them when `all`, at shutdown).
    public func flushAggregated(all: Bool = false) async throws {
        let now = self.clock.now()
        try await self.write(self.aggregator.close(at: now, all: all), at: now)
    }

    private func write(_ summaries: [AuditAggregator.Summary], at now: Date) async throws {
        for summary in summaries {
            try await self.store.audit(AuditAggregator.event(summary), at: now)
        }
    }
}
