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
        for credential in try await self.store.credentials(holderID: holderID) where credential.status != .revoked {
            _ = try await self.revokeCredential(credential.id, reason: reason, actor: actor)
        }
        _ = try await self.store.transitionHolder(id: holderID, from: Set(HolderState.allCases).subtracting([.revoked]), to: .revoked)
        try await self.store.revokeAccessTokens(holderID: holderID)
        try await self.audit(actor, "holder.transition", target: holderID, outcome: "ok", details: "from=\(holder.state.rawValue) to=revoked reason=\(reason.rawValue)")
        if holder.state.isActivated {
            try await self.mail(to: holder, MailMessages.revocationNotice(holder: holder, reason: reason))
        }
        guard let revoked = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "no holder \(holderID)") }
        return revoked
    }

    // MARK: Mail

    /// Queues a mail to the holder's registered address (the notifier delivers it, or keeps it until it can).
    func mail(to holder: Holder, _ message: MailMessages.Message) async throws {
        try await self.notifier.send(OutgoingMessage(channel: "email", recipient: holder.email, subject: message.subject, body: message.body, createdAt: self.clock.now()))
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

/// The mails Sigillo sends holders: Italian first, then English. Links carry single-use codes; nothing else secret.
public enum MailMessages {
    public struct Message: Sendable, Equatable {
        public var subject: String
        public var body: String
    }

    static func date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "it_IT")
        formatter.timeZone = TimeZone(identifier: "Europe/Rome")
        formatter.dateFormat = "dd/MM/yyyy"
        return formatter.string(from: date)
    }

    static func greeting(_ holder: Holder) -> String { "Gentile \(holder.givenName) \(holder.surname)," }

    public static func invitation(holder: Holder, link: String, expiresAt: Date) -> Message {
        Message(subject: "Sigillo: attiva la tua firma remota / activate your remote signature", body: """
            \(self.greeting(holder))

            la tua identità è stata verificata. Per attivare la firma remota apri questo link, scegli nome utente e \
            password e associa il dispositivo OTP:

            \(link)

            L'invito è valido fino al \(self.date(expiresAt)).

            Your identity was verified. Open the link above to choose a username and password and bind your OTP device. \
            The invitation is valid until \(self.date(expiresAt)).
            """)
    }

    public static func expiryReminder(holder: Holder, credential: Credential, daysLeft: Int, renewLink: String) -> Message {
        Message(subject: "Sigillo: il tuo certificato scade tra \(daysLeft) giorni / your certificate expires in \(daysLeft) days", body: """
            \(self.greeting(holder))

            il certificato di firma \(credential.serialNumber) scade il \(self.date(credential.notAfter)) (tra \(daysLeft) giorni). \
            Rinnovalo senza un nuovo riconoscimento: password e dispositivo OTP restano gli stessi.

            \(renewLink)

            Your signing certificate expires on \(self.date(credential.notAfter)). Renew it at the link above: no new \
            identification is needed, your password and OTP device stay the same.
            """)
    }

    public static func expired(holder: Holder, credential: Credential) -> Message {
        Message(subject: "Sigillo: il tuo certificato è scaduto / your certificate expired", body: """
            \(self.greeting(holder))

            il certificato di firma \(credential.serialNumber) è scaduto il \(self.date(credential.notAfter)). Per firmare \
            di nuovo serve un nuovo ordine.

            Your signing certificate expired on \(self.date(credential.notAfter)). A new order is needed to sign again.
            """)
    }

    public static func renewed(holder: Holder, credential: Credential) -> Message {
        Message(subject: "Sigillo: certificato rinnovato / certificate renewed", body: """
            \(self.greeting(holder))

            il nuovo certificato \(credential.serialNumber) è attivo fino al \(self.date(credential.notAfter)). Il \
            precedente è stato revocato (sostituito).

            Your new certificate \(credential.serialNumber) is active until \(self.date(credential.notAfter)); the previous \
            one was revoked as superseded.
            """)
    }

    public static func username(holder: Holder) -> Message {
        Message(subject: "Sigillo: il tuo nome utente / your username", body: """
            \(self.greeting(holder))

            il tuo nome utente è: \(holder.username ?? "(non ancora attivato / not activated yet)")

            Your username is shown above. If you did not ask for it, you can ignore this mail.
            """)
    }

    public static func passwordReset(holder: Holder, link: String) -> Message {
        Message(subject: "Sigillo: reimposta la password / reset your password", body: """
            \(self.greeting(holder))

            per scegliere una nuova password apri questo link entro un'ora; ti verrà chiesto anche un codice OTP. Il \
            link si può usare una sola volta.

            \(link)

            To choose a new password open the link above within one hour; you will also need a one-time password. The \
            link works once. If you did not ask for it, ignore this mail: your password stays as it is.
            """)
    }

    public static func passwordChanged(holder: Holder) -> Message {
        Message(subject: "Sigillo: password cambiata / password changed", body: """
            \(self.greeting(holder))

            la password è stata cambiata e le sessioni aperte sono state chiuse. Se non sei stato tu, sospendi subito il \
            certificato con il codice utente.

            Your password was changed and open sessions were ended. If this was not you, suspend your certificate now \
            with your user code.
            """)
    }

    public static func deviceChanged(holder: Holder, kind: OTPKind) -> Message {
        Message(subject: "Sigillo: nuovo dispositivo OTP / new OTP device", body: """
            \(self.greeting(holder))

            un nuovo dispositivo OTP (\(kind.rawValue)) è stato associato; il precedente non funziona più. Se non sei \
            stato tu, sospendi subito il certificato con il codice utente.

            A new OTP device (\(kind.rawValue)) was bound and the old one no longer works. If this was not you, suspend \
            your certificate now with your user code.
            """)
    }

    public static func mobileChanged(holder: Holder, newMobile: String) -> Message {
        Message(subject: "Sigillo: numero di cellulare cambiato / mobile number changed", body: """
            \(self.greeting(holder))

            il numero di cellulare registrato è ora quello che termina con \(newMobile.suffix(3)).

            Your registered mobile number now ends in \(newMobile.suffix(3)).
            """)
    }

    public static func revocationNotice(holder: Holder, reason: RevocationReason) -> Message {
        Message(subject: "Sigillo: certificato revocato / certificate revoked", body: """
            \(self.greeting(holder))

            il tuo certificato di firma è stato revocato (motivo: \(reason.rawValue)). La revoca è definitiva: per firmare \
            di nuovo serve un nuovo ordine.

            Your signing certificate was revoked (reason: \(reason.rawValue)). Revocation is final: a new order is needed to \
            sign again.
            """)
    }
}
