import Foundation

/// What an SMS code is for. A code works only for the purpose it was sent for (a code sent for a mobile change
/// does not authorize a signature, nor the reverse), and its text says so.
public enum SMSPurpose: String, Sendable, CaseIterable, Codable {
    /// Authorizing signatures (CSC `credentials/sendOTP`, then `credentials/authorize`).
    case signature
    /// Proving the device at activation.
    case activation
    /// A password reset (with the mailed link).
    case passwordReset = "password_reset"
    /// A change of mobile number (the code to the current number).
    case mobileChange = "mobile_change"
    /// Proving a new number in a mobile change (the code to the new number).
    case newMobile = "new_mobile"
    /// Revoking one's own credential.
    case revocation
    /// Renewing the certificate.
    case renewal
    /// Binding a new OTP device.
    case deviceRebind = "device_rebind"

    /// How many wrong tries kill a code.
    public static let tries = 3

    /// The SMS text: the code and what it is for, so a holder never types a code meant for something else.
    func text(code: String, minutes: Int) -> String {
        let what = switch self {
        case .signature: "to authorize a signature / per autorizzare una firma"
        case .activation: "to activate your signature / per attivare la firma"
        case .passwordReset: "to reset your password / per reimpostare la password"
        case .mobileChange: "to change your mobile number / per cambiare numero di cellulare"
        case .newMobile: "to confirm this new number / per confermare questo nuovo numero"
        case .revocation: "to REVOKE your certificate / per REVOCARE il certificato"
        case .renewal: "to renew your certificate / per rinnovare il certificato"
        case .deviceRebind: "to bind a new OTP device / per associare un nuovo dispositivo OTP"
        }
        return "Sigillo: \(code) is your code \(what). Valid \(minutes) min. Never share it."
    }
}

/// What checking an SMS code found.
public enum SMSCodeCheck: Sendable, Equatable {
    /// Right: the code is spent.
    case accepted
    /// Wrong: one try counted against the code (it dies after `SMSPurpose.tries`).
    case rejected
    /// No live code for that purpose: never sent, expired, used, or out of tries.
    case none
}
