import Foundation

/// OTP devices and codes: replay-proof TOTP steps and HOTP counters, SMS codes, device rebinding and mobile number changes.
public protocol OTPStore: Sendable {
    func activeOTPDevice(holderID: String) async throws -> OTPDevice?
    /// Records TOTP step `step` as used if it is newer than the last one; false means replay.
    func advanceTOTP(deviceID: String, to step: UInt64) async throws -> Bool
    /// Moves the HOTP counter from `expected` to `next`; false if another request moved it first.
    func advanceHOTP(deviceID: String, from expected: UInt64, to next: UInt64) async throws -> Bool
    /// Stores the holder's live SMS code for `purpose`, replacing any earlier one for that purpose. The store keeps the
    /// digest keyed with a secret outside the database (the seed vault): a plain digest of six digits is no secret.
    func storeSMSCode(holderID: String, purpose: SMSPurpose, codeHash: [UInt8], expiresAt: Date) async throws
    /// Checks `codeHash` against the holder's live code for `purpose` (unused, unexpired, fewer than `tries` wrong
    /// tries), in one atomic step: spends it when right, counts a try when wrong. Concurrent checks of one code are
    /// serialised, so at most `tries` wrong ones are ever evaluated.
    func checkSMSCode(holderID: String, purpose: SMSPurpose, codeHash: [UInt8], now: Date, tries: Int) async throws -> SMSCodeCheck
    /// A change of mobile number waiting for the code sent to the new number (one per holder: a new one replaces it).
    func storeMobileChange(holderID: String, mobile: String, codeHash: [UInt8], expiresAt: Date) async throws
    /// Applies the waiting change if `codeHash` is its code (unexpired, fewer than `tries` wrong tries) and returns
    /// the new number; a wrong code counts a try (the change dies after `tries`) and gives nil. One atomic step.
    /// - Throws: `conflict` when another holder has registered that number meanwhile.
    func completeMobileChange(holderID: String, codeHash: [UInt8], now: Date, tries: Int) async throws -> String?
    /// A holder's request to replace the OTP device, waiting for the link mailed to the registered address.
    func createDeviceRebindRequest(tokenHash: [UInt8], holderID: String, createdAt: Date, expiresAt: Date) async throws
    func deviceRebindRequest(tokenHash: [UInt8]) async throws -> (holderID: String, expiresAt: Date, usedAt: Date?)?
    /// Spends an unused, unexpired request link once; returns its holder, or nil.
    func spendDeviceRebindRequest(tokenHash: [UInt8], now: Date) async throws -> String?
    /// A new OTP device waiting to be proven (lost or broken device), keyed by the SHA-256 of a single-use token.
    func createDeviceRebind(tokenHash: [UInt8], device: OTPDevice, createdAt: Date, expiresAt: Date) async throws
    func deviceRebind(tokenHash: [UInt8]) async throws -> (device: OTPDevice, expiresAt: Date, usedAt: Date?)?
    /// Spends the rebind token, switches the holder's old devices off and stores `device` (proven) as the active
    /// one, and deletes the holder's SADs, all or nothing. False if the token was used or expired.
    func completeDeviceRebind(tokenHash: [UInt8], device: OTPDevice, now: Date) async throws -> Bool
}
