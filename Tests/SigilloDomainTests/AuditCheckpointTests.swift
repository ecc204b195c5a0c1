import Crypto
import Foundation
import Logging
import PKCS11
import ServiceLifecycle
import SigilloDomain
import SigilloSQLite
import SigilloTestSupport
import Testing

/// Stands in for `Task.sleep` in the checkpointer: each sleep lasts until the test lets one tick pass, and the test can
/// wait until the service is asleep again (its work for the tick done). No wall-clock time anywhere.
actor TickGate {
    private var sleeper: CheckedContinuation<Void, any Error>?
    private var sleepWaiters: [CheckedContinuation<Void, Never>] = []
    private var sleeps = 0

    func sleep() async throws {
        self.sleeps += 1
        for waiter in self.sleepWaiters { waiter.resume() }
        self.sleepWaiters = []
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { self.sleeper = $0 }
        } onCancel: {
            Task { await self.cancel() }
        }
    }

    private func cancel() {
        self.sleeper?.resume(throwing: CancellationError())
        self.sleeper = nil
    }

    /// Ends the current sleep.
    func tick() {
        self.sleeper?.resume()
        self.sleeper = nil
    }

    /// Returns once the service went to sleep `count` times in all.
    func asleep(_ count: Int) async {
        while self.sleeps < count {
            await withCheckedContinuation { self.sleepWaiters.append($0) }
        }
    }
}

@Suite("Audit checkpoints: the chain head signed in the token")
struct AuditCheckpointTests {
    static var logger: Logger {
        var logger = Logger(label: "test-checkpoints")
        logger.logLevel = .critical
        return logger
    }

    @Test("a checkpoint's details round-trip; anything else is not one")
    func details() {
        let checkpoint = AuditCheckpoint(sequence: 42, hash: String(repeating: "ab", count: 32), reason: "records", key: "00ff", signature: [1, 2, 3])
        #expect(AuditCheckpoint(details: checkpoint.details) == checkpoint)
        #expect(AuditCheckpoint(details: "seq=42 hash=abc reason=x key=y signature=AQID") == nil)
        #expect(AuditCheckpoint(details: "records=3") == nil)
        #expect(AuditCheckpoint(details: "") == nil)
    }

    @Test("the checkpointer writes one at start, after N records, after the interval with new records, none when idle, one at shutdown")
    func checkpointer() async throws {
        let fixture = try await ServiceFixture()
        let checkpoints = fixture.service.auditTrail.checkpoints
        let key = try await checkpoints.prepare()
        for _ in 0..<3 { _ = try await fixture.newHolder() }
        let gate = TickGate()
        let checkpointer = AuditCheckpointer(checkpoints: checkpoints, every: 5, interval: 300, tick: .seconds(1), sleep: { _ in try await gate.sleep() },
                                             logger: Self.logger)
        let group = ServiceGroup(configuration: .init(services: [checkpointer], logger: Self.logger))
        let running = Task { try await group.run() }
        func latest() async throws -> (record: AuditRecord, checkpoint: AuditCheckpoint)? {
            guard let record = try await fixture.store.latestAuditCheckpoint(), let checkpoint = AuditCheckpoint(details: record.event.details) else { return nil }
            return (record, checkpoint)
        }
        var ticks = 1
        func tick() async {
            await gate.tick()
            ticks += 1
            await gate.asleep(ticks)
        }

        await gate.asleep(1)
        let start = try #require(try await latest())
        #expect(start.checkpoint.reason == "start")
        #expect(start.checkpoint.sequence == start.record.sequence - 1)
        #expect(start.checkpoint.key == AuditCheckpoint.fingerprint(key))
        #expect(start.record.event.actor == AuditCheckpoint.actor)
        #expect(try await checkpoints.anchor() == AuditAnchor(sequence: start.record.sequence, hash: start.record.hash))

        // Fewer than 5 records and a short while: nothing due.
        for _ in 0..<2 { _ = try await fixture.newHolder() }
        fixture.clock.advance(10)
        await tick()
        #expect(try await latest()?.record == start.record)
        // 5 records since the last checkpoint: due.
        for _ in 0..<3 { _ = try await fixture.newHolder() }
        await tick()
        let byCount = try #require(try await latest())
        #expect(byCount.checkpoint.reason == "records" && byCount.record.sequence > start.record.sequence)
        // One record, and the interval passed: due.
        _ = try await fixture.newHolder()
        fixture.clock.advance(301)
        await tick()
        let byTime = try #require(try await latest())
        #expect(byTime.checkpoint.reason == "interval" && byTime.record.sequence == byCount.record.sequence + 2)
        // Idle (the head is the checkpoint): nothing, however long.
        fixture.clock.advance(3600)
        await tick()
        #expect(try await fixture.store.auditHead() == byTime.record)

        // Shutdown: the last records are anchored before the service ends.
        _ = try await fixture.newHolder()
        await group.triggerGracefulShutdown()
        try await running.value
        let last = try #require(try await latest())
        #expect(last.checkpoint.reason == "shutdown")
        #expect(try await fixture.store.auditHead() == last.record)
        #expect(try await checkpoints.anchor() == AuditAnchor(sequence: last.record.sequence, hash: last.record.hash))

        let verification = try await fixture.service.auditTrail.verify(actor: "operator:test")
        #expect(verification.intact, "\(verification)")
        #expect(verification.checkpoints == 4)
        #expect(verification.anchoredThrough == last.record.sequence)
        #expect(verification.unanchored == 0)
    }

    @Test("a copy of an old checkpoint appended later anchors nothing new: the records after the real one stay unanchored")
    func replayedCheckpoint() async throws {
        let fixture = try await ServiceFixture()
        let checkpoints = fixture.service.auditTrail.checkpoints
        try await checkpoints.prepare()
        for _ in 0..<2 { _ = try await fixture.newHolder() }
        let real = try #require(try await checkpoints.checkpoint(reason: "test"))
        for _ in 0..<2 { _ = try await fixture.newHolder() }
        try await fixture.store.audit(AuditEvent(actor: AuditCheckpoint.actor, action: AuditCheckpoint.action, target: "audit_events", outcome: "ok",
                                                 details: real.event.details), at: fixture.clock.now)
        let verification = try await fixture.service.auditTrail.verify(actor: "operator:test")
        #expect(verification.intact, "\(verification)")
        #expect(verification.checkpoints == 2)
        #expect(verification.anchoredThrough == real.sequence)
        #expect(verification.unanchored == 3)
    }

    @Test("a checkpoint record not signed by the token's audit key breaks verification; so does a token without the key")
    func forgedAndMissingKey() async throws {
        let fixture = try await ServiceFixture()
        let checkpoints = fixture.service.auditTrail.checkpoints
        try await checkpoints.prepare()
        for _ in 0..<2 { _ = try await fixture.newHolder() }
        try #require(try await checkpoints.checkpoint(reason: "test") != nil)
        #expect(try await fixture.service.auditTrail.verify(actor: "operator:test").intact)

        // A checkpoint signed by another P-384 key (well formed, valid for that key) is caught.
        let head = try #require(try await fixture.store.auditHead())
        let rogue = P384.Signing.PrivateKey()
        let signature = try rogue.signature(for: AuditCheckpoint.message(sequence: head.sequence, hash: head.hash))
        let forged = AuditCheckpoint(sequence: head.sequence, hash: head.hash, reason: "records", key: AuditCheckpoint.fingerprint(Array(rogue.publicKey.derRepresentation)),
                                     signature: Array(signature.derRepresentation))
        try await fixture.store.audit(AuditEvent(actor: AuditCheckpoint.actor, action: AuditCheckpoint.action, target: "audit_events", outcome: "ok", details: forged.details),
                                      at: fixture.clock.now)
        let forgedRecord = try #require(try await fixture.store.auditHead())
        let verification = try await fixture.service.auditTrail.verify(actor: "operator:test")
        #expect(!verification.intact)
        #expect(verification.firstBrokenSequence == forgedRecord.sequence)
        #expect(verification.problem?.contains("not signed by the token's audit key") == true, "\(verification)")

        // Without the key, no checkpoint can be checked, and the service refuses to make a new key over signed history.
        try await fixture.token.token.destroyKeyPair(id: AuditCheckpoints.defaultKeyID)
        let fresh = AuditCheckpoints(store: fixture.store, token: fixture.token.token, clock: fixture.clock.serviceClock)
        let findings = try await fresh.check(try await fixture.store.auditRecords())
        #expect(findings.problem?.contains("not in the token") == true, "\(findings)")
        await #expect(throws: SigilloError.self) { try await fresh.prepare() }
        #expect(try await !fixture.token.token.containsKey(id: AuditCheckpoints.defaultKeyID))
    }
}
