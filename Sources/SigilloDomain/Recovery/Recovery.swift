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
    let failures: FailureCounter
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

    /// Checks a reset link (unused, not expired); sends an SMS code when that is the holder's device.
    public func openPasswordReset(code: String, sendSMS: Bool = false) async throws -> ResetLink {
        let (holder, device) = try await self.usableResetLink(code)
        if sendSMS && device.kind == .sms { try await self.sms.sendCode(to: holder) }
        return ResetLink(holder: holder, otpKind: device.kind)
    }

    /// Sets a new password with a reset link and a valid OTP. The link is spent, every session (access token) and
    /// SAD of the holder ends, and password failures are cleared; a wrong OTP counts towards the OTP lock.
    public func resetPassword(code: String, otp: String, newPassword: String) async throws {
        let (holder, device) = try await self.usableResetLink(code)
        try PasswordPolicy.validate(password: newPassword, username: holder.username ?? "")
        let credential = try await self.credentials.primary(holder)
        if credential.otpLocked { throw SigilloError(.otpLocked, "OTP locked: too many wrong one-time passwords; ask an operator") }
        try await self.otp.verify(otp, device: device, holder: holder, credential: credential)
        let passwords = self.passwords
        let hash = try await self.blocking.run { try passwords.hash(newPassword) }
        guard try await self.store.completePasswordReset(tokenHash: Secrets.digest(code), passwordHash: hash, now: self.clock.now()) != nil else {
            throw SigilloError(.linkExpired, "this reset link was already used or expired; ask for a new one")
        }
        try await self.store.resetFailures(credentialID: credential.id)
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

    /// The holder replaces a lost or broken device, proving identity with password and user code.
    public func beginDeviceRebind(username: String, password: String, userCode: String, device: DeviceChoice) async throws -> DeviceRebind {
        let holder = try await self.authentication.checkPassword(username: username, password: password)
        _ = try await self.authentication.checkUserCode(username: username, userCode: userCode)
        return try await self.startRebind(holder: holder, device: device, actor: holder.id)
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
        var (pending, challenge) = try await self.devices.prepare(device, for: holder)
        pending.holderID = holder.id
        let token = Secrets.token()
        let now = self.clock.now()
        try await self.store.createDeviceRebind(tokenHash: Secrets.digest(token), device: pending, createdAt: now, expiresAt: now.addingTimeInterval(Self.deviceRebindValidity))
        try await self.audit.record(actor, "otp.rebind.begin", target: holder.id, outcome: "ok", details: "device=\(pending.kind.rawValue)")
        return DeviceRebind(token: token, challenge: challenge)
    }

    /// Proves the new device with a code and makes it the only one: the old device stops working at once, SADs end.
    public func completeDeviceRebind(token: String, otp: String) async throws {
        guard token.count <= 128, let rebind = try await self.store.deviceRebind(tokenHash: Secrets.digest(token)) else {
            throw SigilloError(.notFound, "unknown device binding")
        }
        let now = self.clock.now()
        guard rebind.usedAt == nil, rebind.expiresAt > now else { throw SigilloError(.linkExpired, "this device binding was already completed or expired; start again") }
        guard let holder = try await self.store.holder(id: rebind.device.holderID) else { throw SigilloError(.notFound, "unknown device binding") }
        guard var proven = try await self.devices.prove(rebind.device, otp: otp, holder: holder, now: now) else {
            try await self.audit.record(holder.id, "otp.rebind.complete", target: holder.id, outcome: "refused", details: "invalid otp")
            throw SigilloError(.invalidOTP, "the one-time password is not valid")
        }
        proven.id = "otp-" + UUID().uuidString.lowercased()
        guard try await self.store.completeDeviceRebind(tokenHash: Secrets.digest(token), device: proven, now: now) else {
            throw SigilloError(.linkExpired, "this device binding was already completed or expired; start again")
        }
        try await self.audit.record(holder.id, "otp.rebind.complete", target: holder.id, outcome: "ok", details: "device=\(proven.kind.rawValue)")
        try await self.mail.send(to: holder, MailTemplates.securityNotice(name: holder.fullName, change: .otpDeviceChanged))
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
        try await self.sms.textCode(to: holder)
        try await self.sms.textCode(to: holder, number: mobile) { codeHash, expiresAt in
            try await self.store.storeMobileChange(holderID: holder.id, mobile: mobile, codeHash: codeHash, expiresAt: expiresAt)
        }
        return MobileChangeStarted(oldNumberEnd: String(holder.mobile.suffix(3)), newNumberEnd: String(mobile.suffix(3)))
    }

    /// Changes the mobile number with username, password, the code sent to the old number and the one sent to the new.
    public func completeMobileChange(username: String, password: String, oldNumberCode: String, newNumberCode: String) async throws -> Holder {
        let holder = try await self.authentication.checkPassword(username: username, password: password)
        let credential = try await self.credentials.primary(holder)
        let now = self.clock.now()
        guard try await self.store.consumeSMSCode(holderID: holder.id, codeHash: Secrets.digest(oldNumberCode), now: now) else {
            try await self.failures.fail(credential, kind: .otp, reason: "wrong or expired sms code from the old number (mobile change)")
        }
        guard let mobile = try await self.store.completeMobileChange(holderID: holder.id, codeHash: Secrets.digest(newNumberCode), now: now) else {
            try await self.failures.fail(credential, kind: .otp, reason: "wrong or expired sms code from the new number (mobile change)")
        }
        try await self.audit.record(holder.id, "holder.mobile.change", target: holder.id, outcome: "ok", details: "by holder, old and new number proven")
        guard let changed = try await self.store.holder(id: holder.id) else { throw SigilloError(.notFound, "unknown holder") }
        try await self.mail.send(to: changed, MailTemplates.securityNotice(name: changed.fullName, change: .mobileChanged(endingIn: String(mobile.suffix(3)))))
        return changed
    }

    /// Revocation by the holder who lost the user code: username, password and OTP prove it is them.
    public func authenticateForRevocation(username: String, password: String, otp: String) async throws -> Holder {
        let holder = try await self.authentication.checkPassword(username: username, password: password)
        let credential = try await self.credentials.primary(holder)
        guard let device = try await self.store.activeOTPDevice(holderID: holder.id) else { throw SigilloError(.invalidOTP, "no OTP device is bound") }
        try await self.otp.verify(otp, device: device, holder: holder, credential: credential)
        return holder
    }
}
