import Foundation
import Logging

/// What one run of the lifecycle jobs did.
public struct LifecycleReport: Sendable, Equatable, Codable {
    public var remindersSent = 0
    public var expiredNotices = 0
    public var stateChanges = 0

    public init() {}
}

/// What happens to credentials after activation: suspension and reinstatement, revocation (the key destroyed in
/// the token), renewal before expiry, and the expiry jobs (reminders, expired states).
public struct CredentialLifecycle: Sendable {
    let store: any HolderStore & CredentialStore & AttemptStore & OTPStore & AccessTokenStore
    let authentication: Authentication
    let credentials: CredentialAccess
    let otp: OTPVerifier
    let states: HolderStates
    let keys: HolderKeys
    let ca: any CertificateIssuer
    let crl: any RevocationList
    let mail: HolderMail
    let audit: AuditLog
    let clock: ServiceClock
    let settings: DomainSettings
    let logger: Logger

    /// Days before a certificate's end when the holder becomes active-expiring and reminders start.
    public static let expiryWarningDays = 90

    /// Revokes a credential for good: status revoked with reason and time, SADs deleted, and the private and
    /// public keys destroyed in the token.
    ///
    /// Revoking an already revoked credential only retries the key destruction (in case the token failed the
    /// first time) and otherwise refuses with `conflict`.
    public func revokeCredential(_ credentialID: String, reason: RevocationReason, actor: String) async throws -> Credential {
        guard let credential = try await self.store.credential(id: credentialID) else { throw SigilloError(.notFound, "no credential \(credentialID)") }
        let changed = try await self.store.revokeCredential(id: credentialID, reason: reason, at: self.clock.now())
        if changed { await self.crl.markDirty() }
        let destroyed: Int
        do {
            destroyed = try await self.keys.destroy(credential, hadWrappedKey: changed && credential.wrappedKey != nil)
        } catch {
            self.logger.error("key destruction failed", metadata: ["credential": "\(credentialID)", "error": "\(error)"])
            try await self.audit.record(actor, "credential.revoke", target: credentialID, outcome: "failed",
                                 details: "reason=\(reason.rawValue) key destruction failed; revoke again to retry")
            throw SigilloError(.tokenUnavailable, "the credential is revoked but its key could not be destroyed yet; run revoke again")
        }
        guard changed || destroyed > 0 else {
            try await self.audit.record(actor, "credential.revoke", target: credentialID, outcome: "refused", details: "already revoked")
            throw SigilloError(.conflict, "credential \(credentialID) is already revoked")
        }
        try await self.audit.record(actor, "credential.revoke", target: credentialID, outcome: "ok",
                             details: "reason=\(reason.rawValue) serial=\(credential.serialNumber) " + (credential.wrappedKey == nil ? "token_objects_destroyed=\(destroyed)" : "wrapped_key_deleted=true"))
        guard let revoked = try await self.store.credential(id: credentialID) else { throw SigilloError(.notFound, "no credential \(credentialID)") }
        return revoked
    }

    /// Cancels an order or closes a holder for good: every credential not yet revoked is revoked (keys destroyed)
    /// and the holder becomes revoked, so a new order is needed. Outstanding invitations stop working.
    public func revokeHolder(holderID: String, reason: RevocationReason, actor: String) async throws -> Holder {
        guard let holder = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "no holder \(holderID)") }
        guard holder.state.canMove(to: .revoked) else {
            try await self.audit.record(actor, "holder.transition", target: holderID, outcome: "refused", details: "from=\(holder.state.rawValue) to=revoked")
            throw SigilloError(.illegalTransition, "holder \(holderID) is already revoked")
        }
        var revokedSerials: [String] = []
        for credential in try await self.store.credentials(holderID: holderID) where credential.status != .revoked {
            _ = try await self.revokeCredential(credential.id, reason: reason, actor: actor)
            revokedSerials.append(credential.serialNumber)
        }
        _ = try await self.store.transitionHolder(id: holderID, from: Set(HolderState.allCases).subtracting([.revoked]), to: .revoked)
        try await self.store.revokeAccessTokens(holderID: holderID)
        try await self.audit.record(actor, "holder.transition", target: holderID, outcome: "ok", details: "from=\(holder.state.rawValue) to=revoked reason=\(reason.rawValue)")
        if holder.state.isActivated, !revokedSerials.isEmpty {
            try await self.mail.send(to: holder, MailTemplates.revocationNotice(name: holder.fullName, serialNumber: revokedSerials.joined(separator: ", "), reason: reason, revokedAt: self.clock.now()))
        }
        guard let revoked = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "no holder \(holderID)") }
        return revoked
    }

    /// Renews an expiring holder's certificate: a new key pair in the token and a new 3-year certificate, without a
    /// new recognition; password and OTP device stay. The holder proves password and OTP. Once the new credential is
    /// stored (active), the old one is revoked as superseded and its key destroyed.
    ///
    /// - Throws: `illegalTransition` unless the holder is active-expiring (renewal opens 90 days before expiry).
    public func renew(username: String, password: String, otp: String) async throws -> Credential {
        let holder = try await self.authentication.checkPassword(username: username, password: password)
        let state = try await self.states.sync(holderID: holder.id, actor: "system:renewal") ?? holder.state
        guard state == .expiring, let current = try await self.store.holder(id: holder.id) else {
            throw SigilloError(.illegalTransition, "renewal opens \(Self.expiryWarningDays) days before expiry; the account is \(state.label)")
        }
        let old = try await self.credentials.primary(current)
        guard old.status == .active else { throw SigilloError(.credentialDisabled, "the credential is \(old.status.rawValue); it cannot be renewed") }
        try await self.otp.verify(otp, holder: current, purpose: .renewal, action: "credential.renew", target: old.id)

        let now = self.clock.now()
        let credentialID = "c-" + UUID().uuidString.lowercased()
        let key = try await self.keys.generate(id: credentialID, algorithm: old.keyAlgorithm)
        var renewed: Credential
        do {
            renewed = try await self.ca.credential(
                id: credentialID, key: key, algorithm: old.keyAlgorithm, multisign: old.multisign, for: current, at: now, settings: self.settings)
            guard try await self.store.addRenewedCredential(renewed, replacing: old.id) else {
                throw SigilloError(.conflict, "the credential changed meanwhile (suspended or revoked); nothing was renewed")
            }
        } catch {
            await self.keys.discard(key, id: credentialID)
            try? await self.audit.record(current.id, "credential.renew", target: old.id, outcome: "failed", details: "\(error)")
            throw error
        }
        try await self.audit.record(current.id, "credential.renew", target: old.id, outcome: "ok", details: "new=\(renewed.id) serial=\(renewed.serialNumber)")
        _ = try await self.revokeCredential(old.id, reason: .superseded, actor: "system:renewal")
        try await self.states.sync(holderID: current.id, actor: "system:renewal")
        try await self.mail.send(to: current, MailTemplates.renewed(name: current.fullName, serialNumber: renewed.serialNumber, validUntil: renewed.notAfter))
        return renewed
    }

    /// What `migrateKeys` did.
    public struct KeyMigrationReport: Sendable, Equatable {
        /// Credentials re-keyed: the old credential (token object, now revoked as superseded) and its replacement (wrapped).
        public var migrated: [(old: String, new: String)] = []
        /// Credentials left as they are, with the reason (suspended: migrate again once reinstated; changed meanwhile).
        public var skipped: [(id: String, reason: String)] = []

        public init() {}

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.migrated.map { [$0.old, $0.new] } == rhs.migrated.map { [$0.old, $0.new] } && lhs.skipped.map { [$0.id, $0.reason] } == rhs.skipped.map { [$0.id, $0.reason] }
        }
    }

    /// Moves every active credential whose key is a token object to a wrapped key (`sigillo admin keys migrate`).
    ///
    /// A token-object holder key was generated non-extractable (`CKA_EXTRACTABLE` false, which PKCS#11 never lets turn
    /// true): no token can wrap it. So each one is re-keyed: a new wrapped key pair and a new certificate for the same
    /// holder (as a renewal, without the holder: password and OTP device stay, the new key is as much under the
    /// holder's sole control), then the old credential is revoked as superseded, which destroys its token objects. The
    /// holder is told by mail. Suspended credentials are skipped (migrate again once reinstated).
    ///
    /// - Throws: `conflict` unless new holder keys are wrapped (`holderKeys: wrapped`).
    public func migrateKeys(actor: String) async throws -> KeyMigrationReport {
        guard self.keys.storage == .wrapped else {
            try await self.audit.record(actor, "keys.migrate", target: "*", outcome: "refused", details: "holderKeys is token")
            throw SigilloError(.conflict, "new holder keys are token objects (holderKeys: token); set holderKeys to wrapped first")
        }
        var report = KeyMigrationReport()
        for old in try await self.store.credentialsExpiring(before: .distantFuture) where old.wrappedKey == nil {
            guard old.status == .active else {
                report.skipped.append((old.id, "\(old.status.rawValue): migrate it once reinstated"))
                continue
            }
            guard let holder = try await self.store.holder(id: old.holderID) else { continue }
            let now = self.clock.now()
            let credentialID = "c-" + UUID().uuidString.lowercased()
            let key = try await self.keys.generate(id: credentialID, algorithm: old.keyAlgorithm, storage: .wrapped)
            var renewed: Credential
            do {
                renewed = try await self.ca.credential(
                    id: credentialID, key: key, algorithm: old.keyAlgorithm, multisign: old.multisign, for: holder, at: now, settings: self.settings)
            } catch {
                try? await self.audit.record(actor, "keys.migrate", target: old.id, outcome: "failed", details: "\(error)")
                throw error
            }
            guard try await self.store.addRenewedCredential(renewed, replacing: old.id) else {
                report.skipped.append((old.id, "changed meanwhile (suspended, revoked or renewed)"))
                continue
            }
            try await self.audit.record(actor, "keys.migrate", target: old.id, outcome: "ok", details: "new=\(renewed.id) serial=\(renewed.serialNumber) wrapped=true")
            _ = try await self.revokeCredential(old.id, reason: .superseded, actor: actor)
            try await self.states.sync(holderID: holder.id, actor: actor)
            try await self.mail.send(to: holder, MailTemplates.renewed(name: holder.fullName, serialNumber: renewed.serialNumber, validUntil: renewed.notAfter))
            report.migrated.append((old.id, renewed.id))
        }
        return report
    }

    /// The reminder due `daysLeft` days before expiry: 90, 80, … 10, then 0 (the expiry notice).
    public static func reminderDue(daysLeft: Int) -> Int? {
        guard daysLeft <= Self.expiryWarningDays else { return nil }
        return max(0, Int((Double(daysLeft) / 10).rounded(.up)) * 10)
    }

    /// One pass of the expiry jobs: holders within 90 days become active-expiring and get a reminder every 10
    /// days (day -90, -80, … -10), those past the end become expired and get a notice (day 0). Idempotent: a
    /// reminder is sent once, and a run after a long pause sends only the latest one due, not a burst.
    public func runLifecycleJobs(actor: String = "system:scheduler") async throws -> LifecycleReport {
        var report = LifecycleReport()
        let now = self.clock.now()
        let window = now.addingTimeInterval(Double(Self.expiryWarningDays) * 86_400 + 1)
        var seen = Set<String>()
        for credential in try await self.store.credentialsExpiring(before: window) {
            let daysLeft = max(0, Int((credential.notAfter.timeIntervalSince(now) / 86_400).rounded(.up)))
            if seen.insert(credential.holderID).inserted {
                let before = try await self.store.holder(id: credential.holderID)?.state
                let after = try await self.states.sync(holderID: credential.holderID, actor: actor)
                if before != after { report.stateChanges += 1 }
            }
            guard credential.status == .active, let due = Self.reminderDue(daysLeft: daysLeft),
                  credential.lastReminderDays.map({ $0 > due }) ?? true,
                  let holder = try await self.store.holder(id: credential.holderID) else { continue }
            // A holder who already renewed has a newer credential: no reminder for the old one.
            let newer = try await self.store.credentials(holderID: holder.id).contains { $0.status == .active && $0.notAfter > credential.notAfter }
            if newer { continue }
            if due == 0 {
                try await self.mail.send(to: holder, MailTemplates.expired(name: holder.fullName, serialNumber: credential.serialNumber, expiredAt: credential.notAfter))
                report.expiredNotices += 1
            } else {
                try await self.mail.send(to: holder, MailTemplates.expiryReminder(name: holder.fullName, serialNumber: credential.serialNumber, expiresAt: credential.notAfter, renewalURL: self.mail.publicURL("/renew"), daysLeft: daysLeft))
                report.remindersSent += 1
            }
            try await self.store.setLastReminder(credentialID: credential.id, days: due)
            try await self.audit.record(actor, due == 0 ? "credential.expired" : "credential.reminder", target: credential.id, outcome: "ok", details: "days_left=\(daysLeft)")
        }
        return report
    }

    // MARK: Status of one credential (operators, and holders with their user code)

    /// Clears the password, OTP and user code locks of the credential's holder (an operator, after checking them).
    public func unlock(credentialID: String, actor: String) async throws -> Credential {
        let credential = try await self.existing(credentialID)
        let failures = try await self.store.secretFailures(holderID: credential.holderID)
        try await self.store.clearAttempts(holderID: credential.holderID, secrets: Set(SecretKind.allCases))
        try await self.audit.record(actor, "credential.unlock", target: credentialID, outcome: "ok",
                                     details: "password_failures=\(failures.password) otp_failures=\(failures.otp) user_code_failures=\(failures.userCode)")
        return credential
    }

    /// The consecutive wrong answers counted against the holder's secrets (admin views).
    public func secretFailures(holderID: String) async throws -> SecretFailures {
        try await self.store.secretFailures(holderID: holderID)
    }

    /// Suspends an active credential (certificateHold): every authorize and signHash fails until reinstated,
    /// and SADs already issued are deleted.
    public func suspend(credentialID: String, actor: String) async throws -> Credential {
        let credential = try await self.existing(credentialID)
        guard try await self.store.changeCredentialStatus(id: credentialID, from: .active, to: .suspended, at: self.clock.now()) else {
            try await self.audit.record(actor, "credential.suspend", target: credentialID, outcome: "refused", details: "status=\(credential.status.rawValue)")
            throw SigilloError(.conflict, "credential \(credentialID) is \(credential.status.rawValue); only an active credential can be suspended")
        }
        await self.crl.markDirty()
        try await self.audit.record(actor, "credential.suspend", target: credentialID, outcome: "ok")
        try await self.states.sync(holderID: credential.holderID, actor: actor)
        return try await self.existing(credentialID)
    }

    /// Makes a suspended credential usable again. A revoked credential stays revoked.
    public func reinstate(credentialID: String, actor: String) async throws -> Credential {
        let credential = try await self.existing(credentialID)
        guard try await self.store.changeCredentialStatus(id: credentialID, from: .suspended, to: .active, at: self.clock.now()) else {
            try await self.audit.record(actor, "credential.reinstate", target: credentialID, outcome: "refused", details: "status=\(credential.status.rawValue)")
            let why = credential.status == .revoked ? "revocation is irreversible" : "only a suspended credential can be reinstated"
            throw SigilloError(.conflict, "credential \(credentialID) is \(credential.status.rawValue): \(why)")
        }
        await self.crl.markDirty()
        try await self.audit.record(actor, "credential.reinstate", target: credentialID, outcome: "ok")
        try await self.states.sync(holderID: credential.holderID, actor: actor)
        return try await self.existing(credentialID)
    }

    /// Revokes a credential for good: status revoked with reason and time, SADs deleted, and the private and
    /// public keys destroyed in the token.
    ///
    /// Revoking an already revoked credential only retries the key destruction (in case the token failed the
    /// first time) and otherwise refuses with `conflict`.
    public func revoke(credentialID: String, reason: RevocationReason, actor: String) async throws -> Credential {
        let credential = try await self.revokeCredential(credentialID, reason: reason, actor: actor)
        try await self.states.sync(holderID: credential.holderID, actor: actor)
        if let holder = try await self.store.holder(id: credential.holderID) {
            try await self.mail.send(to: holder, MailTemplates.revocationNotice(name: holder.fullName, serialNumber: credential.serialNumber, reason: reason, revokedAt: credential.revokedAt ?? self.clock.now()))
        }
        return credential
    }

    private func existing(_ credentialID: String) async throws -> Credential {
        guard let credential = try await self.store.credential(id: credentialID) else { throw SigilloError(.notFound, "no credential \(credentialID)") }
        return credential
    }

    /// Suspends every active credential of the holder (the holder's emergency stop with the user code); returns their ids.
    public func suspendAll(holderID: String, actor: String) async throws -> [String] {
        var changed: [String] = []
        for credential in try await self.store.credentials(holderID: holderID) where credential.status == .active {
            _ = try await self.suspend(credentialID: credential.id, actor: actor)
            changed.append(credential.id)
        }
        return changed
    }

    /// Revokes every credential of the holder not yet revoked (keys destroyed); returns their ids.
    public func revokeAll(holderID: String, reason: RevocationReason, actor: String) async throws -> [String] {
        var changed: [String] = []
        for credential in try await self.store.credentials(holderID: holderID) where credential.status != .revoked {
            _ = try await self.revoke(credentialID: credential.id, reason: reason, actor: actor)
            changed.append(credential.id)
        }
        return changed
    }
}
