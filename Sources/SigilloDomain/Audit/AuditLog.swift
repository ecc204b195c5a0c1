import Foundation

/// Appends security events to the audit chain, stamped with the service clock. Shared by every use case.
public struct AuditLog: Sendable {
    let store: any AuditStore
    let clock: ServiceClock

    public init(store: any AuditStore, clock: ServiceClock) {
        self.store = store
        self.clock = clock
    }

    /// Records that `actor` did `action` on `target` with `outcome` (no secret in any field).
    public func record(_ actor: String, _ action: String, target: String, outcome: String, details: String = "") async throws {
        try await self.store.audit(AuditEvent(actor: actor, action: action, target: target, outcome: outcome, details: details), at: self.clock.now())
    }
}
