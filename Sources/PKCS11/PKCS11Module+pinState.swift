internal import CPKCS11
import Foundation

/// What a token says about its user PIN before anyone tries it (`CK_TOKEN_INFO.flags`), so that a check can refrain
/// from the one wrong attempt that would lock it.
public struct TokenPINState: Hashable, Sendable {
    /// The label and serial number the token reports.
    public var label: String
    public var serial: String
    /// `CKF_USER_PIN_LOCKED`: no login until the security officer unlocks it.
    public var locked: Bool
    /// `CKF_USER_PIN_FINAL_TRY`: one more wrong PIN locks it.
    public var finalTry: Bool
    /// `CKF_USER_PIN_COUNT_LOW`: a wrong PIN was given since the last good one.
    public var countLow: Bool
    /// `CKF_USER_PIN_INITIALIZED`: the user PIN was set.
    public var initialized: Bool
}

extension PKCS11Module {
    /// The PIN state of the initialised token labelled `label` (nothing logged in, no session opened).
    ///
    /// - Throws: `tokenNotFound` when no such token is present.
    public func pinState(tokenLabel label: String) throws(PKCS11Error) -> TokenPINState {
        let slot = try self.slot(forTokenLabel: label)
        let getTokenInfo = try self.function(\.C_GetTokenInfo, "C_GetTokenInfo")
        var info = CK_TOKEN_INFO()
        try check(getTokenInfo(CK_SLOT_ID(slot.rawValue), &info), "C_GetTokenInfo")
        let flags = info.flags
        return TokenPINState(
            label: withUnsafeBytes(of: info.label) { paddedString($0) },
            serial: withUnsafeBytes(of: info.serialNumber) { paddedString($0) },
            locked: flags & UInt(CKF_USER_PIN_LOCKED) != 0,
            finalTry: flags & UInt(CKF_USER_PIN_FINAL_TRY) != 0,
            countLow: flags & UInt(CKF_USER_PIN_COUNT_LOW) != 0,
            initialized: flags & UInt(CKF_USER_PIN_INITIALIZED) != 0)
    }
}
