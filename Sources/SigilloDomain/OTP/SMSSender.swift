import Foundation

/// Sends SMS codes to holders, counted against the SMS limit, and keeps their digests.
struct SMSSender: Sendable {
    let store: any OTPStore & ThrottleStore
    let notifier: any Notifier
    let audit: AuditLog
    let clock: ServiceClock
    /// How long a code works.
    let codeLifetime: TimeInterval

    /// Counts `count` SMS for the holder against the limit: SMS cost money and reach a phone, so at most five codes
    /// in 15 minutes, whichever route asks (sendOTP, activation, reset link, mobile change).
    /// - Throws: `tooManyRequests` (nothing counted) when they would go over it.
    func admit(to holder: Holder, count: Int = 1) async throws {
        guard try await self.store.admit(throttle: "sms/\(holder.id)", now: self.clock.now(), window: 900, limit: 5, count: count) else {
            try await self.audit.record(holder.id, "otp.sms.send", target: holder.id, outcome: "throttled")
            throw SigilloError(.tooManyRequests, "too many SMS codes were sent in the last 15 minutes; try again later")
        }
    }

    /// Tells the holder by SMS, at the registered number, of a security change (no code; not counted).
    func notify(_ holder: Holder, _ text: String) async throws {
        try await self.notifier.send(OutgoingMessage(channel: "sms", recipient: holder.mobile, body: text, createdAt: self.clock.now()))
    }

    /// Sends a new SMS code for `purpose` to the holder's number, counted against the SMS limit; it replaces any
    /// earlier code for that purpose.
    func sendCode(to holder: Holder, for purpose: SMSPurpose) async throws {
        try await self.admit(to: holder)
        try await self.textCode(to: holder, for: purpose)
    }

    /// Sends a new SMS code for `purpose`, already counted against the limit, to the holder's number (or to `number`,
    /// a new one being proven) and stores its hash with `keep` (by default as the holder's live code for `purpose`).
    func textCode(to holder: Holder, for purpose: SMSPurpose, number: String? = nil,
                  keep: ((_ codeHash: [UInt8], _ expiresAt: Date) async throws -> Void)? = nil) async throws {
        let now = self.clock.now()
        let code = SMSCode.generate(digits: 6)
        let expiresAt = now.addingTimeInterval(self.codeLifetime)
        if let keep {
            try await keep(Secrets.digest(code), expiresAt)
        } else {
            try await self.store.storeSMSCode(holderID: holder.id, purpose: purpose, codeHash: Secrets.digest(code), expiresAt: expiresAt)
        }
        let text = purpose.text(code: code, minutes: max(1, Int(self.codeLifetime / 60)))
        try await self.notifier.send(OutgoingMessage(channel: "sms", recipient: number ?? holder.mobile, body: text, createdAt: now))
        try await self.audit.record(holder.id, "otp.sms.send", target: holder.id, outcome: "ok",
                                    details: "purpose=\(purpose.rawValue)" + (number == nil ? "" : " to the new number"))
    }
}
