import Foundation

/// Checks a one-time password from a holder's bound device: TOTP steps and HOTP counters advance by compare-and-set,
/// so two requests racing with one code cannot both pass; SMS codes are spent once.
struct OTPVerifier: Sendable {
    let store: any OTPStore
    let failures: FailureCounter
    let clock: ServiceClock

    func verify(_ otp: String, device: OTPDevice, holder: Holder, credential: Credential) async throws {
        let now = self.clock.now()
        switch device.kind {
        case .totp:
            switch TOTP.check(code: otp, secret: device.secret, time: now, lastUsedStep: device.lastStep == 0 ? nil : device.lastStep,
                              digits: device.digits, algorithm: device.algorithm, period: device.period) {
            case .accepted(let step):
                // Compare-and-set: two requests racing with the same code cannot both pass.
                guard try await self.store.advanceTOTP(deviceID: device.id, to: step) else {
                    try await self.failures.fail(credential, kind: .otp, reason: "replayed otp", code: .otpReplayed)
                }
            case .replayed:
                try await self.failures.fail(credential, kind: .otp, reason: "replayed otp", code: .otpReplayed)
            case .invalid:
                try await self.failures.fail(credential, kind: .otp, reason: "wrong otp")
            }
        case .hotp:
            guard let next = HOTP.verify(code: otp, secret: device.secret, counter: device.counter, digits: device.digits, algorithm: device.algorithm) else {
                try await self.failures.fail(credential, kind: .otp, reason: "wrong otp")
            }
            guard try await self.store.advanceHOTP(deviceID: device.id, from: device.counter, to: next) else {
                try await self.failures.fail(credential, kind: .otp, reason: "replayed otp", code: .otpReplayed)
            }
        case .sms:
            guard try await self.store.consumeSMSCode(holderID: holder.id, codeHash: Secrets.digest(otp), now: now) else {
                try await self.failures.fail(credential, kind: .otp, reason: "wrong or expired sms code")
            }
        }
    }
}
