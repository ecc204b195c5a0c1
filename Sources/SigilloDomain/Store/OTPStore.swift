import Foundation

/// OTP devices and codes: replay-proof TOTP steps and HOTP counters, SMS codes, device rebinding and mobile number changes.
public protocol OTPStore: Sendable {
    func activeOTPDevice(holderID: String) async throws -> OTPDevice?
    /// Records TOTP step `step` as used if it is newer than the last one; false means replay.
    func advanceTOTP(deviceID: String, to step: UInt64) async throws -> Bool
    /// Moves the HOTP counter from `expected` to `next`; false if another request moved it first.
    func advanceHOTP(deviceID: String, from expected: UInt64, to next: UInt64) async throws -> Bool
    func storeSMSCode(holderID: String, codeHash: [UInt8], expiresAt: Date) async throws
    /// Consumes an unexpired, unused SMS code; false if there is none matching.
    func consumeSMSCode(holderID: String, codeHash: [UInt8], now: Date) async throws -> Bool
    /// A change of mobile number waiting for the code sent to the new number (one per holder: a new one replaces it).
    func storeMobileChange(holderID: String, mobile: String, codeHash: [UInt8], expiresAt: Date) async throws
    /// Applies the waiting change whose code matches and has not expired, once; returns the new number, or nil.
    /// - Throws: `conflict` when another holder has registered that number meanwhile.
    func completeMobileChange(holderID: String, codeHash: [UInt8], now: Date) async throws -> String?
    /// A new OTP device waiting to be proven (lost or broken device), keyed by the SHA-256 of a single-use token.
    func createDeviceRebind(tokenHash: [UInt8], device: OTPDevice, createdAt: Date, expiresAt: Date) async throws
    func deviceRebind(tokenHash: [UInt8]) async throws -> (device: OTPDevice, expiresAt: Date, usedAt: Date?)?
    /// Spends the rebind token, switches the holder's old devices off and stores `device` (proven) as the active
    /// one, and deletes the holder's SADs, all or nothing. False if the token was used or expired.
    func completeDeviceRebind(tokenHash: [UInt8], device: OTPDevice, now: Date) async throws -> Bool
}
