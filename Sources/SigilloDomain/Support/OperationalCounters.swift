import Foundation
import Synchronization

/// What operators watch that happens deep in the domain, counted where it happens (cheap atomics, no metrics
/// library here) and read by the server's metrics at each scrape: lockouts, and messages handed to the notifier
/// (SMS codes and notices; they are sent in the request, so "in flight" is their backlog).
public final class OperationalCounters: Sendable {
    private let lockouts = Mutex<[SecretKind: Int]>([:])
    private let messages = Mutex<[MessageKey: Int]>([:])
    private let inFlight = Mutex<[String: Int]>([:])

    /// What a message handed to the notifier came to.
    public enum MessageOutcome: String, Sendable, CaseIterable {
        case sent, failed
    }

    private struct MessageKey: Hashable {
        let channel: String
        let outcome: MessageOutcome
    }

    public init() {}

    /// A secret of a holder became locked (the wrong answer that reached `Lockout.limit`).
    func locked(_ secret: SecretKind) {
        self.lockouts.withLock { $0[secret, default: 0] += 1 }
    }

    /// Lockouts since start, by secret (`password`, `otp`, `userCode`): every kind, zero included.
    public var lockoutsBySecret: [(secret: String, count: Int)] {
        let counts = self.lockouts.withLock { $0 }
        return SecretKind.allCases.map { ($0.rawValue, counts[$0] ?? 0) }
    }

    /// Runs `send` for a message of `channel`, counting it in flight meanwhile and then sent or failed.
    func counting(channel: String, _ send: () async throws -> Void) async throws {
        self.inFlight.withLock { $0[channel, default: 0] += 1 }
        defer { self.inFlight.withLock { $0[channel, default: 1] -= 1 } }
        do {
            try await send()
            self.messages.withLock { $0[MessageKey(channel: channel, outcome: .sent), default: 0] += 1 }
        } catch {
            self.messages.withLock { $0[MessageKey(channel: channel, outcome: .failed), default: 0] += 1 }
            throw error
        }
    }

    /// Messages handed to the notifier since start, by channel (`sms`, and `email` when mail goes through it) and
    /// outcome; `sms` is always listed.
    public var messagesByChannel: [(channel: String, outcome: String, count: Int)] {
        let counts = self.messages.withLock { $0 }
        let channels = Set(counts.keys.map(\.channel)).union(["sms"]).sorted()
        return channels.flatMap { channel in
            MessageOutcome.allCases.map { (channel, $0.rawValue, counts[MessageKey(channel: channel, outcome: $0)] ?? 0) }
        }
    }

    /// Messages being handed to the notifier now, by channel (`sms` always listed).
    public var messagesInFlight: [(channel: String, count: Int)] {
        let counts = self.inFlight.withLock { $0 }
        return Set(counts.keys).union(["sms"]).sorted().map { ($0, counts[$0] ?? 0) }
    }
}

/// The notifier the domain uses: the configured one, with every message counted (`OperationalCounters`).
struct CountingNotifier: Notifier {
    let base: any Notifier
    let counters: OperationalCounters

    func send(_ message: OutgoingMessage) async throws {
        try await self.counters.counting(channel: message.channel) { try await self.base.send(message) }
    }
}

/// Waits for the database: for a pooled connection (PostgreSQL) or for the single writer (SQLite), measured where
/// they happen and read by the server's metrics at each scrape.
public final class PoolWaits: Sendable {
    private let waitingNow = Atomic<Int>(0)
    private let acquired = Atomic<Int>(0)
    private let waitedNanoseconds = Atomic<Int>(0)

    public init() {}

    /// One wait, from `PoolWaits.begin()`: `acquired()` when the connection (or the writer) is in hand, or
    /// `abandoned()` if the caller stopped waiting; whichever comes first counts, once.
    public final class Wait: Sendable {
        private let waits: PoolWaits
        private let start = ContinuousClock.now
        private let open = Atomic<Bool>(true)

        fileprivate init(_ waits: PoolWaits) {
            self.waits = waits
        }

        public func acquired() {
            guard self.open.exchange(false, ordering: .relaxed) else { return }
            let waited = ContinuousClock.now - self.start
            self.waits.waitingNow.subtract(1, ordering: .relaxed)
            self.waits.acquired.add(1, ordering: .relaxed)
            self.waits.waitedNanoseconds.add(Int(waited.components.seconds) * 1_000_000_000 + Int(waited.components.attoseconds / 1_000_000_000),
                                             ordering: .relaxed)
        }

        public func abandoned() {
            guard self.open.exchange(false, ordering: .relaxed) else { return }
            self.waits.waitingNow.subtract(1, ordering: .relaxed)
        }
    }

    /// A caller starts waiting.
    public func begin() -> Wait {
        self.waitingNow.add(1, ordering: .relaxed)
        return Wait(self)
    }

    /// Callers waiting now; connections (or writer turns) obtained since start; seconds they waited for them in all.
    public var snapshot: (waiting: Int, acquisitions: Int, seconds: Double) {
        (self.waitingNow.load(ordering: .relaxed), self.acquired.load(ordering: .relaxed),
         Double(self.waitedNanoseconds.load(ordering: .relaxed)) / 1e9)
    }
}

/// A store that measures its waits for the database (both of the project's stores do).
public protocol PoolWaitsReporting: Sendable {
    var poolWaits: PoolWaits { get }
}
