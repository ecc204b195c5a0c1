import Foundation
import Logging
import ServiceLifecycle

/// What one run of the lifecycle jobs did.
public struct LifecycleReport: Sendable, Equatable, Codable {
    public var remindersSent = 0
    public var expiredNotices = 0
    public var stateChanges = 0

    public init() {}
}

/// Revocation, renewal and the expiry jobs.
extension SigningService {
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
            destroyed = try await self.signer.token.destroyKeyPair(id: credential.tokenKeyID)
        } catch {
            self.logger.error("key destruction failed", metadata: ["credential": "\(credentialID)", "error": "\(error)"])
            try await self.audit(actor, "credential.revoke", target: credentialID, outcome: "failed",
                                 details: "reason=\(reason.rawValue) key destruction failed; revoke again to retry")
            throw SigilloError(.tokenUnavailable, "the credential is revoked but its key could not be destroyed yet; run revoke again")
        }
        guard changed || destroyed > 0 else {
            try await self.audit(actor, "credential.revoke", target: credentialID, outcome: "refused", details: "already revoked")
            throw SigilloError(.conflict, "credential \(credentialID) is already revoked")
        }
        try await self.audit(actor, "credential.revoke", target: credentialID, outcome: "ok",
                             details: "reason=\(reason.rawValue) serial=\(credential.serialNumber) token_objects_destroyed=\(destroyed)")
        guard let revoked = try await self.store.credential(id: credentialID) else { throw SigilloError(.notFound, "no credential \(credentialID)") }
        return revoked
    }

    // MARK: Renewal

    /// Renews an expiring holder's certificate: a new key pair in the token and a new 3-year certificate, without a
    /// new recognition; password and OTP device stay. The holder proves password and OTP. Once the new credential is
    /// stored (active), the old one is revoked as superseded and its key destroyed.
    ///
    /// - Throws: `illegalTransition` unless the holder is active-expiring (renewal opens 90 days before expiry).
    public func renew(username: String, password: String, otp: String) async throws -> Credential {
        let holder = try await self.checkPassword(username: username, password: password)
        let state = try await self.syncHolderState(holderID: holder.id, actor: "system:renewal") ?? holder.state
        guard state == .expiring, let current = try await self.store.holder(id: holder.id) else {
            throw SigilloError(.illegalTransition, "renewal opens \(Self.expiryWarningDays) days before expiry; the account is \(state.label)")
        }
        let old = try await self.primaryCredential(current)
        guard old.status == .active else { throw SigilloError(.credentialDisabled, "the credential is \(old.status.rawValue); it cannot be renewed") }
        if old.otpLocked { throw SigilloError(.otpLocked, "OTP locked: too many wrong one-time passwords") }
        guard let device = try await self.store.activeOTPDevice(holderID: holder.id) else { throw SigilloError(.invalidOTP, "no OTP device is bound") }
        try await self.verifyOTP(otp, device: device, holder: current, credential: old)
        try await self.store.resetFailures(credentialID: old.id)

        let now = self.clock.now()
        let credentialID = "c-" + UUID().uuidString.lowercased()
        let spki = try await self.tokenCall { try await self.signer.token.generateKeyPair(id: credentialID, algorithm: old.keyAlgorithm) }
        let renewed: Credential
        do {
            let identity = HolderIdentity(givenName: current.givenName, surname: current.surname, fiscalCode: current.fiscalCode, email: current.email)
            let certificate = try await self.ca.issue(
                publicKeySPKI: spki, for: identity, notBefore: now, validityYears: self.settings.certificateValidityYears, publicBaseURL: self.settings.publicBaseURL)
            renewed = Credential(
                id: credentialID, holderID: current.id, keyAlgorithm: old.keyAlgorithm, tokenKeyID: credentialID,
                certificateDER: certificate.der, serialNumber: certificate.serialNumber,
                notBefore: certificate.notBefore, notAfter: certificate.notAfter, status: .active, multisign: old.multisign,
                passwordFailures: 0, otpFailures: 0)
            guard try await self.store.addRenewedCredential(renewed, replacing: old.id) else {
                throw SigilloError(.conflict, "the credential changed meanwhile (suspended or revoked); nothing was renewed")
            }
        } catch {
            _ = try? await self.signer.token.destroyKeyPair(id: credentialID)
            try? await self.audit(current.id, "credential.renew", target: old.id, outcome: "failed", details: "\(error)")
            throw error
        }
        try await self.audit(current.id, "credential.renew", target: old.id, outcome: "ok", details: "new=\(renewed.id) serial=\(renewed.serialNumber)")
        _ = try await self.revokeCredential(old.id, reason: .superseded, actor: "system:renewal")
        try await self.syncHolderState(holderID: current.id, actor: "system:renewal")
        try await self.mail(to: current, MailTemplates.renewed(name: current.fullName, serialNumber: renewed.serialNumber, validUntil: renewed.notAfter))
        return renewed
    }

    // MARK: Expiry jobs

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
                let after = try await self.syncHolderState(holderID: credential.holderID, actor: actor)
                if before != after { report.stateChanges += 1 }
            }
            guard credential.status == .active, let due = Self.reminderDue(daysLeft: daysLeft),
                  credential.lastReminderDays.map({ $0 > due }) ?? true,
                  let holder = try await self.store.holder(id: credential.holderID) else { continue }
            // A holder who already renewed has a newer credential: no reminder for the old one.
            let newer = try await self.store.credentials(holderID: holder.id).contains { $0.status == .active && $0.notAfter > credential.notAfter }
            if newer { continue }
            if due == 0 {
                try await self.mail(to: holder, MailTemplates.expired(name: holder.fullName, serialNumber: credential.serialNumber, expiredAt: credential.notAfter))
                report.expiredNotices += 1
            } else {
                try await self.mail(to: holder, MailTemplates.expiryReminder(name: holder.fullName, serialNumber: credential.serialNumber, expiresAt: credential.notAfter, renewalURL: self.publicURL("/renew"), daysLeft: daysLeft))
                report.remindersSent += 1
            }
            try await self.store.setLastReminder(credentialID: credential.id, days: due)
            try await self.audit(actor, due == 0 ? "credential.expired" : "credential.reminder", target: credential.id, outcome: "ok", details: "days_left=\(daysLeft)")
        }
        return report
    }
}

/// Runs the lifecycle jobs every `interval` (and once at start) until cancelled; failures are logged and retried
/// at the next tick. The server runs one; tests call `SigilloService.runLifecycleJobs` with a moved clock instead.
public struct LifecycleScheduler: Service {
    let service: SigningService
    let interval: Duration
    let logger: Logger

    public init(service: SigningService, interval: Duration = .seconds(3600), logger: Logger) {
        self.service = service
        self.interval = interval
        self.logger = logger
    }

    /// Stops at the group's graceful shutdown (or when its task is cancelled).
    public func run() async {
        await cancelWhenGracefulShutdown { await self.loop() }
    }

    private func loop() async {
        while !Task.isCancelled {
            do {
                let report = try await self.service.runLifecycleJobs()
                if report != LifecycleReport() {
                    self.logger.info("lifecycle jobs", metadata: ["reminders": "\(report.remindersSent)", "expired": "\(report.expiredNotices)", "states": "\(report.stateChanges)"])
                }
                _ = try? await self.service.crl.currentList()
            } catch {
                self.logger.error("lifecycle jobs failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: self.interval)
        }
    }
}
