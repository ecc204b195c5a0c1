import Foundation
import SigilloDomain
import Synchronization

/// A clock tests move by hand: months and years pass in milliseconds.
public final class TestClock: Sendable {
    private let current: Mutex<Date>
    public init(_ start: Date = Date()) { self.current = Mutex(start) }
    public var now: Date { self.current.withLock { $0 } }
    public func advance(_ seconds: TimeInterval) { self.current.withLock { $0 = $0.addingTimeInterval(seconds) } }
    public var serviceClock: ServiceClock { ServiceClock { [self] in self.now } }
}
