import Foundation
import SigilloDomain

/// An authenticator app for tests against a server on the real clock, or on a test clock (`clock`).
///
/// The server accepts the codes of the current step and of one step either side, and each step once. A code for the
/// previous step may be refused by the time it arrives (the step boundary passed while the request waited on a busy
/// machine), so `next()` never gives one: it gives the code of the earliest step that is after the last one used and
/// not before the current one, which the server accepts for at least 30 seconds. When that step would be two ahead,
/// it waits for the next step to begin first.
public struct TOTPDevice: Sendable {
    public let secret: [UInt8]
    /// The step of the last code given.
    public private(set) var lastStep: UInt64?

    /// The server's clock (nil: the real one): codes are for its steps.
    public let clock: ServiceClock?

    public init(secret: [UInt8], clock: ServiceClock? = nil) {
        self.secret = secret
        self.clock = clock
    }

    public mutating func next() async -> String {
        let now = self.clock?.now ?? { Date() }
        var current = TOTP.step(at: now())
        let step = max(current, self.lastStep.map { $0 + 1 } ?? 0)
        // A test clock that stands still would never get there: a few periods at most, then the code anyway.
        var waits = 0
        while step > current + 1, waits < 3 {
            let start = Double(current + 1) * Double(TOTP.defaultPeriod)
            try? await Task.sleep(for: .seconds(min(Double(TOTP.defaultPeriod), max(0.05, start - now().timeIntervalSince1970 + 0.05))))
            current = TOTP.step(at: now())
            waits += 1
        }
        self.lastStep = step
        return TOTP.code(secret: self.secret, time: Date(timeIntervalSince1970: Double(step) * Double(TOTP.defaultPeriod)))
    }
}
