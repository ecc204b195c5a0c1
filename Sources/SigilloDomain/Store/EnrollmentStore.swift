import Foundation

/// Invitations, activation and the hardware OTP token inventory.
public protocol EnrollmentStore: Sendable {
    /// Stores a new invitation and voids every earlier unused one of the same holder, in one transaction: an older
    /// code then reads as unknown (`invitation(codeHash:)` gives nil). Used invitations stay, as history.
    ///
    /// - Returns: how many earlier unused invitations were voided.
    @discardableResult
    func createInvitation(_ invitation: Invitation) async throws -> Int
    func invitation(codeHash: [UInt8]) async throws -> Invitation?
    func setPendingDevice(codeHash: [UInt8], device: OTPDevice?) async throws
    /// Marks the invitation used and stores the holder's username, password hash, OTP device and credential,
    /// all or nothing. - Throws: `invitationUsed` if another activation got there first; `conflict` for a taken username.
    func completeActivation(codeHash: [UInt8], at time: Date, username: String, passwordHash: String, device: OTPDevice, credential: Credential) async throws
    /// Adds hardware tokens from a manufacturer's seed file; serials already known are left as they are. Returns how many were added.
    func importHardwareTokens(_ tokens: [HardwareToken], at time: Date) async throws -> Int
    func hardwareToken(serial: String) async throws -> HardwareToken?
}
