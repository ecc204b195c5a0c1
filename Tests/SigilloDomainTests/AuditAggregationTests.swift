import Foundation
import Logging
import SigilloDomain
import SigilloSQLite
import SigilloTestSupport
import Testing

/// Refusals anyone can cause cost the audit chain one row per interval, not one per request.
@Suite("Audit aggregation of anonymous refusals")
struct AuditAggregationTests {
    /// `count` calls of `body`, 30 at a time.
    static func hammer(_ count: Int, _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                if index >= 30 { try await group.next() }
                group.addTask { try await body(index) }
            }
            try await group.waitForAll()
        }
    }

    @Test("300 anonymous username reminders: one row at once, one summary per interval, the chain intact")
    func anonymousReminders() async throws {
        let fixture = try await ServiceFixture()
        let before = try await fixture.store.auditRecords().count
        let recovery = fixture.service.recovery
        try await Self.hammer(300) { index in try await recovery.remindUsername(email: "nobody\(index)@example.it") }
        let rows = try await fixture.store.auditRecords().dropFirst(before)
        #expect(rows.count == 1, "\(rows.map(\.event))")
        #expect(rows.first?.event.action == "recovery.username" && rows.first?.event.actor == "anonymous")
        #expect(fixture.service.audit.aggregator.pendingCount == 299)

        // The interval is not over: nothing to write yet.
        try await fixture.service.audit.flushAggregated()
        #expect(try await fixture.store.auditRecords().count == before + 1)

        fixture.clock.advance(61)
        try await fixture.service.audit.flushAggregated()
        let summary = try #require(try await fixture.store.auditRecords().last)
        #expect(try await fixture.store.auditRecords().count == before + 2)
        #expect(summary.event.actor == "anonymous" && summary.event.action == "recovery.username" && summary.event.outcome == "ignored")
        #expect(summary.event.details.hasPrefix("aggregated: 299 more from "), "\(summary.event.details)")
        #expect(fixture.service.audit.aggregator.pendingCount == 0)

        // Still busy: the next ones are only counted, and summed up when that interval is over.
        try await Self.hammer(40) { index in try await recovery.remindUsername(email: "again\(index)@example.it") }
        #expect(try await fixture.store.auditRecords().count == before + 2)
        fixture.clock.advance(61)
        try await fixture.service.audit.flushAggregated()
        #expect(try await fixture.store.auditRecords().last?.event.details.hasPrefix("aggregated: 40 more") == true)

        // Quiet for a whole interval: forgotten, so the next one is written in full again.
        fixture.clock.advance(61)
        try await fixture.service.audit.flushAggregated()
        #expect(try await fixture.store.auditRecords().count == before + 3)
        try await fixture.service.recovery.remindUsername(email: "later@example.it")
        let rowsNow = try await fixture.store.auditRecords()
        #expect(rowsNow.count == before + 4 && rowsNow.last?.event.details.hasPrefix("aggregated") == false)

        let verification = try await fixture.service.auditTrail.verify(actor: "operator:test")
        #expect(verification.intact, "\(verification)")
    }

    @Test("a busy group is summed up by the next event after its interval, without the periodic flush")
    func closedByNextEvent() async throws {
        let fixture = try await ServiceFixture()
        let clock = fixture.clock
        let audit = AuditLog(store: fixture.store, clock: clock.serviceClock)
        let before = try await fixture.store.auditRecords().count
        for _ in 0..<5 { try await audit.record("anonymous", "auth.login", target: "account", outcome: "refused", details: "unknown user") }
        clock.advance(60)
        try await audit.record("anonymous", "auth.login", target: "account", outcome: "refused", details: "unknown user")
        let rows = try await fixture.store.auditRecords().dropFirst(before).map(\.event)
        #expect(rows.count == 2, "\(rows)")
        #expect(rows.last?.details.hasPrefix("aggregated: 5 more") == true && rows.last?.details.hasSuffix("; unknown user") == true, "\(rows)")
    }

    @Test("throttled outcomes of known holders aggregate per holder; other events are written one by one")
    func throttledAndOthers() async throws {
        let fixture = try await ServiceFixture()
        let audit = AuditLog(store: fixture.store, clock: fixture.clock.serviceClock)
        let before = try await fixture.store.auditRecords().count
        for _ in 0..<5 {
            try await audit.record("holder-a", "otp.sms.send", target: "holder-a", outcome: "throttled")
            try await audit.record("holder-b", "otp.sms.send", target: "holder-b", outcome: "throttled")
            try await audit.record("holder-a", "auth.login", target: "holder-a", outcome: "ok")
        }
        let rows = try await fixture.store.auditRecords().dropFirst(before).map(\.event)
        #expect(rows.filter { $0.outcome == "throttled" }.map(\.actor) == ["holder-a", "holder-b"])
        #expect(rows.filter { $0.action == "auth.login" }.count == 5)
        fixture.clock.advance(60)
        try await audit.flushAggregated()
        let summaries = try await fixture.store.auditRecords().dropFirst(before + rows.count).map(\.event)
        #expect(Set(summaries.map(\.actor)) == ["holder-a", "holder-b"] && summaries.allSatisfy { $0.details.hasPrefix("aggregated: 4 more") }, "\(summaries)")
    }

    @Test("memory is bounded: past maxGroups, new groups fold into one per action and outcome")
    func boundedGroups() async throws {
        let fixture = try await ServiceFixture()
        let audit = AuditLog(store: fixture.store, clock: fixture.clock.serviceClock, aggregator: AuditAggregator(interval: 60, maxGroups: 3))
        let before = try await fixture.store.auditRecords().count
        for index in 0..<1_000 {
            try await audit.record("holder-\(index)", "recovery.username", target: "holder-\(index)", outcome: "throttled")
        }
        // Three groups of their own, then the first of the folded ones: 4 rows for 1,000 events.
        #expect(try await fixture.store.auditRecords().count == before + 4)
        #expect(audit.aggregator.pendingCount == 996)
        try await audit.flushAggregated(all: true)
        let summary = try #require(try await fixture.store.auditRecords().last?.event)
        #expect(summary.actor == "*" && summary.target == "*" && summary.details.hasPrefix("aggregated: 996 more"), "\(summary)")
    }

    @Test("the service writes what it counted when it stops")
    func flushedAtShutdown() async throws {
        let fixture = try await ServiceFixture()
        let audit = fixture.service.audit
        let service = AuditAggregationService(audit: audit, interval: .seconds(3_600), logger: Logger(label: "test"))
        let running = Task { await service.run() }
        let before = try await fixture.store.auditRecords().count
        for index in 0..<25 { try await fixture.service.recovery.remindUsername(email: "nobody\(index)@example.it") }
        #expect(try await fixture.store.auditRecords().count == before + 1)
        running.cancel()
        await running.value
        let last = try #require(try await fixture.store.auditRecords().last?.event)
        #expect(try await fixture.store.auditRecords().count == before + 2)
        #expect(last.action == "recovery.username" && last.details.hasPrefix("aggregated: 24 more"), "\(last)")
    }
}
