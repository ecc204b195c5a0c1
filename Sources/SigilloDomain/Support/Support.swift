import Crypto
import Dispatch
import Foundation
import Synchronization

/// The service's clock, injectable so tests can move through months and years in milliseconds.
public struct ServiceClock: Sendable {
    public let now: @Sendable () -> Date

    public init(now: @escaping @Sendable () -> Date) {
        self.now = now
    }

    public static let system = ServiceClock { Date() }
}

/// A fixed set of serial queues for blocking CPU work (Argon2id): never the cooperative pool, and at most
/// one job per CPU at a time so a burst of logins cannot exhaust memory.
public final class BlockingExecutor: Sendable {
    private let queues: [DispatchQueue]
    private let next = Atomic<Int>(0)
    private let waiting = Atomic<Int>(0)
    private let running = Atomic<Int>(0)

    /// Threads (serial queues) jobs run on.
    public var width: Int { self.queues.count }
    /// Jobs submitted and not started yet: a queue that stays above zero means logins wait for CPU.
    public var queued: Int { self.waiting.load(ordering: .relaxed) }
    /// Jobs running now.
    public var active: Int { self.running.load(ordering: .relaxed) }

    public init(width: Int = ProcessInfo.processInfo.activeProcessorCount, label: String = "sigillo.blocking") {
        self.queues = (0..<max(1, width)).map { DispatchQueue(label: "\(label).\($0)") }
    }

    /// Runs `body` on one of the queues and returns its result to the suspended caller.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let queue = self.queues[self.next.add(1, ordering: .relaxed).oldValue % self.queues.count]
        return try await withCheckedThrowingContinuation { continuation in
            self.waiting.add(1, ordering: .relaxed)
            queue.async {
                self.waiting.subtract(1, ordering: .relaxed)
                self.running.add(1, ordering: .relaxed)
                let result = Result { try body() }
                self.running.subtract(1, ordering: .relaxed)
                continuation.resume(with: result)
            }
        }
    }
}

/// Random tokens and their stored digests.
enum Secrets {
    /// `count` random bytes from the system CSPRNG.
    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// An unguessable URL-safe token (base64url, no padding) of `count` random bytes.
    ///
    /// It never begins with `-` or `_`: operators pass tokens as command-line arguments (`sigillo admin rebind
    /// complete TOKEN`), where a leading `-` reads as an option (1 token in 32 failed that way). Drawing again costs
    /// less than 0.05 bit of the 256.
    static func token(bytes count: Int = 32) -> String {
        while true {
            let token = Data(self.randomBytes(count)).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            if let first = token.unicodeScalars.first, first != "-", first != "_" { return token }
        }
    }

    /// What the store keeps instead of a secret token: its SHA-256.
    static func digest(_ text: String) -> [UInt8] {
        Array(SHA256.hash(data: Data(text.utf8)))
    }
}
