import Foundation

/// Enrolment (the states an operator drives), the holder state that follows the credentials, and mail.
extension SigningService {
    /// Moves a holder one step along the enrolment: order created → payment registered → awaiting processing →
    /// awaiting documents → recognized. Invitation, activation, expiry, suspension and revocation have their own
    /// commands, so they are refused here. Every attempt is audited.
    ///
    /// - Throws: `illegalTransition` for a move the enrolment does not allow, `notFound` for an unknown holder.
    public func advanceEnrolment(holderID: String, to next: HolderState, actor: String) async throws -> Holder {
        guard let holder = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "no holder \(holderID)") }
        let operatorSteps: Set<HolderState> = [.paymentRegistered, .awaitingProcessing, .awaitingDocuments, .recognized]
        guard operatorSteps.contains(next) else {
            try await self.audit(actor, "holder.transition", target: holderID, outcome: "refused", details: "from=\(holder.state.rawValue) to=\(next.rawValue)")
            throw SigilloError(.illegalTransition, "'\(next.rawValue)' is not an enrolment step; use invite, suspend, reinstate or revoke")
        }
        guard holder.state.canMove(to: next), try await self.store.transitionHolder(id: holderID, from: [holder.state], to: next) else {
            try await self.audit(actor, "holder.transition", target: holderID, outcome: "refused", details: "from=\(holder.state.rawValue) to=\(next.rawValue)")
            let legal = holder.state.allowed.filter(operatorSteps.contains).map(\.rawValue).sorted()
            throw SigilloError(.illegalTransition, "a holder \(holder.state.rawValue) cannot become \(next.rawValue)"
                + (legal.isEmpty ? "" : "; next: \(legal.joined(separator: ", "))"))
        }
        try await self.audit(actor, "holder.transition", target: holderID, outcome: "ok", details: "from=\(holder.state.rawValue) to=\(next.rawValue)")
        guard let moved = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "no holder \(holderID)") }
        return moved
    }

    /// The holder an invitation code is for, and until when it is valid (the activation page's greeting).
    ///
    /// - Throws: `notFound`, `invitationUsed`, `invitationExpired` (older than 12 months: a new order is needed).
    public func invitationHolder(code: String) async throws -> (holder: Holder, expiresAt: Date) {
        let (invitation, holder) = try await self.openInvitation(code)
        return (holder, invitation.expiresAt)
    }

    /// Days before a certificate's end when the holder becomes active-expiring and reminders start.
    public static let expiryWarningDays = 90

    /// The state an activated holder's credentials call for: active (or expiring within 90 days) while one
    /// credential is active with a current certificate, expired when the certificates ran out, suspended while
    /// one is only suspended, revoked when all are revoked.
    func derivedState(credentials: [Credential], now: Date) -> HolderState {
        let active = credentials.filter { $0.status == .active }
        if let latest = active.map(\.notAfter).max() {
            if latest <= now { return .expired }
            return latest.timeIntervalSince(now) <= Double(Self.expiryWarningDays) * 86_400 ? .expiring : .active
        }
        if let suspended = credentials.filter({ $0.status == .suspended }).map(\.notAfter).max() {
            return suspended <= now ? .expired : .suspended
        }
        return credentials.isEmpty ? .active : .revoked
    }

    /// Brings an activated holder's state in line with their credentials (after a suspension, reinstatement,
    /// revocation, renewal or the passing of time) and audits the change. Returns the state it ends in.
    @discardableResult
    func syncHolderState(holderID: String, actor: String) async throws -> HolderState? {
        guard let holder = try await self.store.holder(id: holderID) else { return nil }
        guard holder.state.isActivated else { return holder.state }
        let target = self.derivedState(credentials: try await self.store.credentials(holderID: holderID), now: self.clock.now())
        guard target != holder.state else { return target }
        guard holder.state.canMove(to: target), try await self.store.transitionHolder(id: holderID, from: [holder.state], to: target) else {
            return holder.state
        }
        try await self.audit(actor, "holder.transition", target: holderID, outcome: "ok", details: "from=\(holder.state.rawValue) to=\(target.rawValue)")
        return target
    }

    /// Cancels an order or closes a holder for good: every credential not yet revoked is revoked (keys destroyed)
    /// and the holder becomes revoked, so a new order is needed. Outstanding invitations stop working.
    public func revokeHolder(holderID: String, reason: RevocationReason, actor: String) async throws -> Holder {
        guard let holder = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "no holder \(holderID)") }
        guard holder.state.canMove(to: .revoked) else {
            try await self.audit(actor, "holder.transition", target: holderID, outcome: "refused", details: "from=\(holder.state.rawValue) to=revoked")
            throw SigilloError(.illegalTransition, "holder \(holderID) is already revoked")
        }
        var revokedSerials: [String] = []
        for credential in try await self.store.credentials(holderID: holderID) where credential.status != .revoked {
            _ = try await self.revokeCredential(credential.id, reason: reason, actor: actor)
            revokedSerials.append(credential.serialNumber)
        }
        _ = try await self.store.transitionHolder(id: holderID, from: Set(HolderState.allCases).subtracting([.revoked]), to: .revoked)
        try await self.store.revokeAccessTokens(holderID: holderID)
        try await self.audit(actor, "holder.transition", target: holderID, outcome: "ok", details: "from=\(holder.state.rawValue) to=revoked reason=\(reason.rawValue)")
        if holder.state.isActivated, !revokedSerials.isEmpty {
            try await self.mail(to: holder, MailTemplates.revocationNotice(name: holder.fullName, serialNumber: revokedSerials.joined(separator: ", "), reason: reason, revokedAt: self.clock.now()))
        }
        guard let revoked = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "no holder \(holderID)") }
        return revoked
    }

    // MARK: Mail

    /// Queues a mail to the holder's registered address (the mail outbox delivers it, retrying until the relay takes it).
    func mail(to holder: Holder, _ content: MailContent) async throws {
        try await self.mailer.send(content, to: holder.email)
    }

    /// An address on the public listener, e.g. `/renew`.
    func publicURL(_ path: String) -> String {
        var base = self.settings.publicBaseURL
        while base.hasSuffix("/") { base.removeLast() }
        return base + path
    }

    /// A link on the public listener carrying a single-use code.
    func link(_ path: String, code: String) -> String {
        self.publicURL(path) + "?code=" + code
    }
}
