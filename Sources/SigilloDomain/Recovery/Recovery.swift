import Foundation

/// What a reset link needs before the new password: the holder and the kind of OTP to ask for.
public struct ResetLink: Sendable {
    public var holder: Holder
    public var otpKind: OTPKind
}

/// A new device waiting for its first code, and the single-use token that completes the binding.
public struct DeviceRebind: Sendable {
    public var token: String
    public var challenge: ActivationChallenge
}

/// Where the two codes of a mobile change went: the last digits of the old and of the new number.
public struct MobileChangeStarted: Sendable {
    public let oldNumberEnd: String
    public let newNumberEnd: String
}

/// Lost credentials: username, password, OTP device, mobile number; and the holder's own view of their state.
///
/// Requests that name an account (lost username, password reset) answer the same whether or not it exists, so
/// they tell nobody which addresses are registered; what they send goes only to the registered address.
public struct Recovery: Sendable {
    let store: any HolderStore & CredentialStore & OTPStore & PasswordResetStore & ThrottleStore
    let authentication: Authentication
    let credentials: CredentialAccess
    let otp: OTPVerifier
    let attempts: SecretAttempts
    let devices: OTPDevices
    let sms: SMSSender
    let states: HolderStates
    let passwords: PasswordHasher
    let blocking: BlockingExecutor
    let mail: HolderMail
    let audit: AuditLog
    let clock: ServiceClock

    /// How long an emailed password-reset link works.
    public static let passwordResetValidity: TimeInterval = 3600

    /// How long a new OTP device waits to be proven.
    public static let deviceRebindValidity: TimeInterval = 900

    /// How long the mailed link that confirms a device replacement works.
    public static let deviceRebindConfirmationValidity: TimeInterval = 3600

    /// Mails the username to the registered address, if there is an activated holder with it.
    public func remindUsername(email: String) async throws {
        let email = email.trimmingCharacters(in: .whitespaces).lowercased()
        guard let holder = try await self.store.holder(email: email), holder.state.isActivated, holder.username != nil else {
            try await self.audit.record("anonymous", "recovery.username", target: "email", outcome: "ignored", details: "no activated holder")
            return
        }
        // At most three reminders in 15 minutes, answered with the same silence: the route cannot flood a mailbox.
        guard try await self.store.admit(throttle: "username-reminder/\(holder.id)", now: self.clock.now(), window: 900, limit: 3, count: 1) else {
            try await self.audit.record(holder.id, "recovery.username", target: holder.id, outcome: "throttled")
            return
        }
        try await self.mail.send(to: holder, MailTemplates.usernameReminder(name: holder.fullName, username: holder.username ?? ""))
        try await self.audit.record(holder.id, "recovery.username", target: holder.id, outcome: "ok")
    }

    /// Mails a single-use reset link (valid one hour) to the holder with this username or email, if any.
    public func requestPasswordReset(usernameOrEmail: String) async throws {
        let key = usernameOrEmail.trimmingCharacters(in: .whitespaces).lowercased()
        let found = key.contains("@") ? try await self.store.holder(email: key) : try await self.store.holder(username: key)
        guard let holder = found, holder.state.canSign || holder.state == .suspended else {
            try await self.audit.record("anonymous", "recovery.password.request", target: "account", outcome: "ignored", details: "no usable holder")
            return
        }
        let now = self.clock.now()
        // At most three links in 15 minutes: the public route cannot be used to flood someone's mailbox.
        guard try await self.store.admit(throttle: "password-reset/\(holder.id)", now: now, window: 900, limit: 3, count: 1) else {
            try await self.audit.record(holder.id, "recovery.password.request", target: holder.id, outcome: "throttled")
            return
        }
        let code = Secrets.token()
        try await self.store.createPasswordReset(tokenHash: Secrets.digest(code), holderID: holder.id, createdAt: now, expiresAt: now.addingTimeInterval(Self.passwordResetValidity))
        try await self.mail.send(to: holder, MailTemplates.passwordReset(name: holder.fullName, resetURL: self.mail.link("/recovery/password", code: code), expiresAt: now.addingTimeInterval(Self.passwordResetValidity)))
        try await self.audit.record(holder.id, "recovery.password.request", target: holder.id, outcome: "ok")
    }

    /// Checks a reset link (unused, not expired). Sends nothing: opening a link (a GET) has no side effect.
    public func openPasswordReset(code: String) async throws -> ResetLink {
        let (holder, device) = try await self.usableResetLink(code)
        return ResetLink(holder: holder, otpKind: device.kind)
    }

    /// Sends the SMS code for a password reset (only when the holder's device is SMS), with a valid reset link.
    public func sendPasswordResetCode(code: String) async throws -> ResetLink {
        let (holder, device) = try await self.usableResetLink(code)
        if device.kind == .sms { try await self.sms.sendCode(to: holder, for: .passwordReset) }
        return ResetLink(holder: holder, otpKind: device.kind)
    }

    /// Sets a new password with a reset link and a valid OTP. The link is spent, every session (access token) and
    /// SAD of the holder ends, and password failures are cleared; a wrong OTP counts towards the OTP lock.
    public func resetPassword(code: String, otp: String, newPassword: String) async throws {
        let (holder, device) = try await self.usableResetLink(code)
        try PasswordPolicy.validate(password: newPassword, username: holder.username ?? "")
        try await self.otp.verify(otp, device: device, holder: holder, purpose: .passwordReset, action: "recovery.password.reset", target: holder.id)
        let passwords = self.passwords
        let hash = try await self.blocking.run { try passwords.hash(newPassword) }
        guard try await self.store.completePasswordReset(tokenHash: Secrets.digest(code), passwordHash: hash, now: self.clock.now()) != nil else {
            throw SigilloError(.linkExpired, "this reset link was already used or expired; ask for a new one")
        }
        try await self.audit.record(holder.id, "recovery.password.reset", target: holder.id, outcome: "ok", details: "sessions and SADs ended")
        try await self.mail.send(to: holder, MailTemplates.securityNotice(name: holder.fullName, change: .passwordChanged))
    }

    private func usableResetLink(_ code: String) async throws -> (Holder, OTPDevice) {
        let code = code.trimmingCharacters(in: .whitespaces)
        guard !code.isEmpty, code.count <= 128, let reset = try await self.store.passwordReset(tokenHash: Secrets.digest(code)) else {
            throw SigilloError(.notFound, "unknown reset link")
        }
        guard reset.usedAt == nil, reset.expiresAt > self.clock.now() else {
            throw SigilloError(.linkExpired, "this reset link was already used or expired; ask for a new one")
        }
        guard let holder = try await self.store.holder(id: reset.holderID), let device = try await self.store.activeOTPDevice(holderID: holder.id) else {
            throw SigilloError(.notFound, "unknown reset link")
        }
        return (holder, device)
    }

    /// A holder's own view: their state and credentials (username and password, any activated state).
    public func status(username: String, password: String) async throws -> (holder: Holder, credentials: [Credential]) {
        let holder = try await self.authentication.checkPassword(username: username, password: password)
        try await self.states.sync(holderID: holder.id, actor: "system:status")
        guard let current = try await self.store.holder(id: holder.id) else { throw SigilloError(.notFound, "unknown holder") }
        try await self.audit.record(holder.id, "selfservice.status", target: holder.id, outcome: "ok")
        return (current, try await self.store.credentials(holderID: holder.id))
    }

    /// The holder replaces a lost or broken device. Password and user code are both things known, so they only open
    /// the way: a single-use confirmation link goes to the registered address, and only whoever opens it (possession of
    /// the mailbox) chooses and proves the new device. The answer is the same whether the link went or not… after the
    /// password and user code were right (each under its lock).
    ///
    /// - Returns: the start of the registered address the link went to (e.g. `an…@example.org`).
    public func beginDeviceRebind(username: String, password: String, userCode: String) async throws -> String {
        let holder = try await self.authentication.checkPassword(username: username, password: password)
        _ = try await self.authentication.checkUserCode(username: username, userCode: userCode)
        guard holder.state.canSign || holder.state == .suspended else {
            throw SigilloError(.illegalTransition, "the account is \(holder.state.label): no device to replace")
        }
        let now = self.clock.now()
        // At most three links in 15 minutes, like the password reset: the route cannot flood the mailbox.
        guard try await self.store.admit(throttle: "device-rebind/\(holder.id)", now: now, window: 900, limit: 3, count: 1) else {
            try await self.audit.record(holder.id, "otp.rebind.request", target: holder.id, outcome: "throttled")
            throw SigilloError(.tooManyRequests, "a confirmation link was sent several times in the last 15 minutes; use the last one")
        }
        let token = Secrets.token()
        let expiresAt = now.addingTimeInterval(Self.deviceRebindConfirmationValidity)
        try await self.store.createDeviceRebindRequest(tokenHash: Secrets.digest(token), holderID: holder.id, createdAt: now, expiresAt: expiresAt)
        try await self.mail.send(to: holder, MailTemplates.deviceRebindConfirmation(
            name: holder.fullName, confirmURL: self.mail.link("/recovery/device/confirm", code: token), expiresAt: expiresAt))
        try await self.audit.record(holder.id, "otp.rebind.request", target: holder.id, outcome: "ok", details: "confirmation link mailed")
        return Self.maskedEmail(holder.email)
    }

    /// Whether a mailed device-replacement link still works (opening it — a GET — changes nothing).
    public func checkDeviceRebindRequest(token: String) async throws {
        guard token.count <= 128, let request = try await self.store.deviceRebindRequest(tokenHash: Secrets.digest(token)) else {
            throw SigilloError(.notFound, "unknown confirmation link")
        }
        guard request.usedAt == nil, request.expiresAt > self.clock.now() else {
            throw SigilloError(.linkExpired, "this confirmation link was already used or expired; start again")
        }
    }

    /// The mailed link was opened and the new device chosen: spends the link and prepares the device (a new TOTP
    /// secret, a hardware token from the inventory, or SMS to the registered number — never a seed the caller sends).
    public func confirmDeviceRebind(token: String, device: DeviceChoice) async throws -> DeviceRebind {
        if case .hotp = device { throw SigilloError(.invalidRequest, "choose an app, a hardware token from your operator (by serial) or SMS") }
        try await self.checkDeviceRebindRequest(token: token)
        guard let request = try await self.store.deviceRebindRequest(tokenHash: Secrets.digest(token)),
              let holder = try await self.store.holder(id: request.holderID) else { throw SigilloError(.notFound, "unknown confirmation link") }
        // The device first (a mistyped serial leaves the link usable), then the link is spent, once.
        let prepared = try await self.devices.prepare(device, for: holder, purpose: .deviceRebind)
        guard try await self.store.spendDeviceRebindRequest(tokenHash: Secrets.digest(token), now: self.clock.now()) == holder.id else {
            throw SigilloError(.linkExpired, "this confirmation link was already used or expired; start again")
        }
        return try await self.storeRebind(prepared, holder: holder, actor: holder.id)
    }

    /// `anna.rossi@example.org` → `an…@example.org`: enough for the holder to recognise, little for anyone else.
    static func maskedEmail(_ email: String) -> String {
        guard let at = email.firstIndex(of: "@") else { return "…" }
        return String(email[..<at].prefix(2)) + "…" + String(email[at...])
    }

    /// An operator replaces a holder's device after checking their identity (audited with the operator's name).
    public func operatorBeginDeviceRebind(holderID: String, device: DeviceChoice, actor: String) async throws -> DeviceRebind {
        guard let holder = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "no holder \(holderID)") }
        guard holder.state.isActivated, holder.state != .revoked, holder.state != .expired else {
            throw SigilloError(.illegalTransition, "holder \(holderID) is \(holder.state.rawValue): no device to replace")
        }
        return try await self.startRebind(holder: holder, device: device, actor: actor)
    }

    private func startRebind(holder: Holder, device: DeviceChoice, actor: String) async throws -> DeviceRebind {
        try await self.storeRebind(try await self.devices.prepare(device, for: holder, purpose: .deviceRebind), holder: holder, actor: actor)
    }

    private func storeRebind(_ prepared: (OTPDevice, ActivationChallenge), holder: Holder, actor: String) async throws -> DeviceRebind {
        var (pending, challenge) = prepared
        pending.holderID = holder.id
        let token = Secrets.token()
        let now = self.clock.now()
        try await self.store.createDeviceRebind(tokenHash: Secrets.digest(token), device: pending, createdAt: now, expiresAt: now.addingTimeInterval(Self.deviceRebindValidity))
        try await self.audit.record(actor, "otp.rebind.begin", target: holder.id, outcome: "ok", details: "device=\(pending.kind.rawValue)")
        return DeviceRebind(token: token, challenge: challenge)
    }

    /// Proves the new device with a code and makes it the only one: the old device stops working at once, SADs end,
    /// and the holder is told by mail and by SMS to the registered number. The code counts towards the OTP lock (a
    /// locked holder is refused: an operator unlocks first, or completes the binding with them).
    public func completeDeviceRebind(token: String, otp: String) async throws {
        try await self.completeRebind(token: token, otp: otp, actor: nil)
    }

    /// An operator completes a binding with the holder's first code from the new device (audited with the operator's
    /// name; the holder's OTP lock does not apply, the operator having checked the holder).
    public func operatorCompleteDeviceRebind(token: String, otp: String, actor: String) async throws {
        try await self.completeRebind(token: token, otp: otp, actor: actor)
    }

    private func completeRebind(token: String, otp: String, actor: String?) async throws {
        guard token.count <= 128, let rebind = try await self.store.deviceRebind(tokenHash: Secrets.digest(token)) else {
            throw SigilloError(.notFound, "unknown device binding")
        }
        let now = self.clock.now()
        guard rebind.usedAt == nil, rebind.expiresAt > now else { throw SigilloError(.linkExpired, "this device binding was already completed or expired; start again") }
        guard let holder = try await self.store.holder(id: rebind.device.holderID) else { throw SigilloError(.notFound, "unknown device binding") }
        let prove = { try await self.devices.prove(rebind.device, otp: otp, holder: holder, now: now, purpose: .deviceRebind) }
        let proof: OTPDevice?
        if let actor {
            proof = try await prove()
            if proof == nil { try await self.audit.record(actor, "otp.rebind.complete", target: holder.id, outcome: "refused", details: "invalid otp from the new device") }
        } else {
            var proven: OTPDevice?
            try await self.attempts.check(.otp, holder: holder, action: "otp.rebind.complete", target: holder.id) {
                proven = try await prove()
                return proven == nil ? .rejected(reason: "invalid otp from the new device") : .accepted
            }
            proof = proven
        }
        guard var proven = proof else { throw SigilloError(.invalidOTP, "the one-time password is not valid") }
        proven.id = "otp-" + UUID().uuidString.lowercased()
        guard try await self.store.completeDeviceRebind(tokenHash: Secrets.digest(token), device: proven, now: now) else {
            throw SigilloError(.linkExpired, "this device binding was already completed or expired; start again")
        }
        try await self.audit.record(actor ?? holder.id, "otp.rebind.complete", target: holder.id, outcome: "ok", details: "device=\(proven.kind.rawValue)")
        try await self.mail.send(to: holder, MailTemplates.securityNotice(name: holder.fullName, change: .otpDeviceChanged))
        try await self.sms.notify(holder, "Sigillo: a new OTP device was bound to your signature / nuovo dispositivo OTP associato. Not you? Suspend it now with your user code.")
    }

    /// Starts a change of mobile number, after username and password: one code by SMS to the current (old) number,
    /// which proves the holder still has it, and one to the new number, which proves it is theirs and typed right.
    public func beginMobileChange(username: String, password: String, newMobile: String) async throws -> MobileChangeStarted {
        let holder = try await self.authentication.checkPassword(username: username, password: password)
        let mobile = try Enrollment.normalizedMobile(newMobile)
        guard mobile != holder.mobile else { throw SigilloError(.invalidRequest, "this is already the registered number") }
        if let other = try await self.store.holder(mobile: mobile), other.id != holder.id {
            throw SigilloError(.conflict, "mobile already belongs to another record")
        }
        // Both codes or none: a refusal after the first had gone would leave the holder waiting with half a change.
        try await self.sms.admit(to: holder, count: 2)
        try await self.sms.textCode(to: holder, for: .mobileChange)
        try await self.sms.textCode(to: holder, for: .newMobile, number: mobile) { codeHash, expiresAt in
            try await self.store.storeMobileChange(holderID: holder.id, mobile: mobile, codeHash: codeHash, expiresAt: expiresAt)
        }
        return MobileChangeStarted(oldNumberEnd: String(holder.mobile.suffix(3)), newNumberEnd: String(mobile.suffix(3)))
    }

    /// Changes the mobile number with username, password, the code sent to the old number and the one sent to the new.
    public func completeMobileChange(username: String, password: String, oldNumberCode: String, newNumberCode: String) async throws -> Holder {
        let holder = try await self.authentication.checkPassword(username: username, password: password)
        let now = self.clock.now()
        // Both codes count towards the OTP lock; each code also dies after `SMSPurpose.tries` wrong tries.
        try await self.attempts.check(.otp, holder: holder, action: "holder.mobile.change", target: holder.id) {
            try await self.store.checkSMSCode(holderID: holder.id, purpose: .mobileChange, codeHash: Secrets.digest(oldNumberCode), now: now, tries: SMSPurpose.tries) == .accepted
                ? .accepted : .rejected(reason: "wrong or expired sms code from the old number")
        }
        var changedTo: String?
        try await self.attempts.check(.otp, holder: holder, action: "holder.mobile.change", target: holder.id) {
            changedTo = try await self.store.completeMobileChange(holderID: holder.id, codeHash: Secrets.digest(newNumberCode), now: now, tries: SMSPurpose.tries)
            return changedTo == nil ? .rejected(reason: "wrong or expired sms code from the new number") : .accepted
        }
        guard let mobile = changedTo else { throw SigilloError(.invalidOTP, "the code from the new number is not valid") }
        try await self.audit.record(holder.id, "holder.mobile.change", target: holder.id, outcome: "ok", details: "by holder, old and new number proven")
        guard let changed = try await self.store.holder(id: holder.id) else { throw SigilloError(.notFound, "unknown holder") }
        try await self.mail.send(to: changed, MailTemplates.securityNotice(name: changed.fullName, change: .mobileChanged(endingIn: String(mobile.suffix(3)))))
        return changed
    }

    /// Sends an SMS code for a self-service revocation or renewal, to a holder whose device is SMS, after the password.
    public func sendSelfServiceCode(username: String, password: String, purpose: SMSPurpose) async throws {
        guard purpose == .revocation || purpose == .renewal else { throw SigilloError(.invalidRequest, "purpose is revoke or renew") }
        let holder = try await self.authentication.checkPassword(username: username, password: password)
        guard let device = try await self.store.activeOTPDevice(holderID: holder.id), device.kind == .sms else {
            throw SigilloError(.invalidRequest, "this account's OTP is not sent by SMS")
        }
        try await self.sms.sendCode(to: holder, for: purpose)
    }

    /// Revocation by the holder who lost the user code: username, password and OTP prove it is them.
    public func authenticateForRevocation(username: String, password: String, otp: String) async throws -> Holder {
        let holder = try await self.authentication.checkPassword(username: username, password: password)
        _ = try await self.credentials.primary(holder)
        try await self.otp.verify(otp, holder: holder, purpose: .revocation, action: "selfservice.revoke", target: holder.id)
        return holder
    }
}
