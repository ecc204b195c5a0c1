import Foundation
import SigilloDomain

/// An authenticator app for tests against a server on the real clock.
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

    public init(secret: [UInt8]) {
        self.secret = secret
    }

    public mutating func next() async -> String {
        var current = TOTP.step(at: Date())
        let step = max(current, self.lastStep.map { $0 + 1 } ?? 0)
        while step > current + 1 {
            let start = Double(current + 1) * Double(TOTP.defaultPeriod)
            try? await Task.sleep(for: .seconds(max(0.05, start - Date().timeIntervalSince1970 + 0.05)))
            current = TOTP.step(at: Date())
        }
        self.lastStep = step
        return TOTP.code(secret: self.secret, time: Date(timeIntervalSince1970: Double(step) * Double(TOTP.defaultPeriod)))
    }
}
