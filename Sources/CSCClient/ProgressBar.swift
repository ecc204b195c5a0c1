import Foundation
import Synchronization

/// A one-line progress bar on standard error: bytes done / total and rate, redrawn at most 10 times a second.
public final class ProgressBar: Sendable {
    private let total: Int
    private let label: String
    private let start = ContinuousClock.now
    private let done = Atomic<Int>(0)
    private let lastDraw = Mutex<ContinuousClock.Instant?>(nil)
    private let format: @Sendable (Double) -> String
    private let showRate: Bool

    /// - Parameters:
    ///   - format: how an amount is shown (bytes by default).
    ///   - showRate: whether the amount per second is shown after the bar.
    public init(total: Int, label: String, format: @escaping @Sendable (Double) -> String = SigningPlan.formatBytes, showRate: Bool = true) {
        self.total = max(1, total)
        self.label = label
        self.format = format
        self.showRate = showRate
    }

    public func add(_ bytes: Int) {
        let done = self.done.add(bytes, ordering: .relaxed).newValue
        let now = ContinuousClock.now
        let draw = self.lastDraw.withLock { last -> Bool in
            if let previous = last, now - previous < .milliseconds(100) { return false }
            last = now
            return true
        }
        if draw { self.draw(done: done, now: now, final: false) }
    }

    public func finish() {
        self.draw(done: self.done.load(ordering: .relaxed), now: .now, final: true)
    }

    private func draw(done: Int, now: ContinuousClock.Instant, final: Bool) {
        let elapsed = now - self.start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = seconds > 0 ? Double(done) / seconds : 0
        let fraction = min(1, Double(done) / Double(self.total))
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let amount = "\(self.format(Double(done))) / \(self.format(Double(self.total)))"
        let line = "\r\(self.label) [\(bar)] \(amount)  " + (self.showRate ? "\(self.format(rate))/s  " : "")
        Terminal.error(line, newline: final)
    }
}
