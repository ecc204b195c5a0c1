import Foundation

/// Keeps an activated holder's state in line with their credentials (suspension, reinstatement, revocation,
/// renewal, the passing of time), audited.
struct HolderStates: Sendable {
    let store: any HolderStore & CredentialStore
    let audit: AuditLog
    let clock: ServiceClock

    /// The state an activated holder's credentials call for: active (or expiring within 90 days) while one
    /// credential is active with a current certificate, expired when the certificates ran out, suspended while
    /// one is only suspended, revoked when all are revoked.
    func derived(credentials: [Credential], now: Date) -> HolderState {
        let active = credentials.filter { $0.status == .active }
        if let latest = active.map(\.notAfter).max() {
            if latest <= now { return .expired }
            return latest.timeIntervalSince(now) <= Double(CredentialLifecycle.expiryWarningDays) * 86_400 ? .expiring : .active
        }
        if let suspended = credentials.filter({ $0.status == .suspended }).map(\.notAfter).max() {
            return suspended <= now ? .expired : .suspended
        }
        return credentials.isEmpty ? .active : .revoked
    }

    /// Brings an activated holder's state in line with their credentials (after a suspension, reinstatement,
    /// revocation, renewal or the passing of time) and audits the change. Returns the state it ends in.
    @discardableResult
    func sync(holderID: String, actor: String) async throws -> HolderState? {
        guard let holder = try await self.store.holder(id: holderID) else { return nil }
        guard holder.state.isActivated else { return holder.state }
        let target = self.derived(credentials: try await self.store.credentials(holderID: holderID), now: self.clock.now())
        guard target != holder.state else { return target }
        guard holder.state.canMove(to: target), try await self.store.transitionHolder(id: holderID, from: [holder.state], to: target) else {
            return holder.state
        }
        try await self.audit.record(actor, "holder.transition", target: holderID, outcome: "ok", details: "from=\(holder.state.rawValue) to=\(target.rawValue)")
        return target
    }
}
