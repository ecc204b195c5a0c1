import Foundation

/// Checks a one-time password from a holder's bound device, under the holder's OTP lock (`SecretAttempts`): the
/// attempt is counted before the code is looked at, so a locked holder is refused on every route that takes an OTP.
/// TOTP steps and HOTP counters advance by compare-and-set, so two requests racing with one code cannot both pass;
/// SMS codes are bound to their purpose, spent once, and die after `SMSPurpose.tries` wrong tries.
struct OTPVerifier: Sendable {
    let store: any OTPStore
    let attempts: SecretAttempts
    let clock: ServiceClock

    /// Verifies `otp` from the holder's active device; `purpose` names the SMS code that counts (SMS devices).
    /// Failures are audited under `action` on `target`.
    ///
    /// - Throws: `invalidOTP`, `otpReplayed`, or `otpLocked` (already locked, or locked by this answer).
    func verify(_ otp: String, holder: Holder, purpose: SMSPurpose, action: String, target: String) async throws {
        guard let device = try await self.store.activeOTPDevice(holderID: holder.id) else {
            throw SigilloError(.invalidOTP, "no OTP device is bound to this holder")
        }
        try await self.verify(otp, device: device, holder: holder, purpose: purpose, action: action, target: target)
    }

    func verify(_ otp: String, device: OTPDevice, holder: Holder, purpose: SMSPurpose, action: String, target: String) async throws {
        try await self.attempts.check(.otp, holder: holder, action: action, target: target) {
            try await self.check(otp, device: device, holder: holder, purpose: purpose)
        }
    }

    private func check(_ otp: String, device: OTPDevice, holder: Holder, purpose: SMSPurpose) async throws -> SecretAttempts.Verdict {
        let now = self.clock.now()
        switch device.kind {
        case .totp:
            switch TOTP.check(code: otp, secret: device.secret, time: now, lastUsedStep: device.lastStep == 0 ? nil : device.lastStep,
                              digits: device.digits, algorithm: device.algorithm, period: device.period) {
            case .accepted(let step):
                // Compare-and-set: two requests racing with the same code cannot both pass.
                guard try await self.store.advanceTOTP(deviceID: device.id, to: step) else { return .rejected(reason: "replayed otp", code: .otpReplayed) }
                return .accepted
            case .replayed:
                return .rejected(reason: "replayed otp", code: .otpReplayed)
            case .invalid:
                return .rejected(reason: "wrong otp")
            }
        case .hotp:
            guard let next = HOTP.verify(code: otp, secret: device.secret, counter: device.counter, digits: device.digits, algorithm: device.algorithm) else {
                return .rejected(reason: "wrong otp")
            }
            guard try await self.store.advanceHOTP(deviceID: device.id, from: device.counter, to: next) else {
                return .rejected(reason: "replayed otp", code: .otpReplayed)
            }
            return .accepted
        case .sms:
            switch try await self.store.checkSMSCode(holderID: holder.id, purpose: purpose, codeHash: Secrets.digest(otp), now: now, tries: SMSPurpose.tries) {
            case .accepted: return .accepted
            case .rejected: return .rejected(reason: "wrong sms code (\(purpose.rawValue))")
            case .none: return .rejected(reason: "no live sms code for \(purpose.rawValue)")
            }
        }
    }
}
