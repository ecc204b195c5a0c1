import Foundation

/// The OTP device a holder binds at activation.
public enum DeviceChoice: Sendable {
    /// A phone app: the server makes the secret and returns its `otpauth://` URI.
    case totp(algorithm: OTPAlgorithm = .sha1, digits: Int = 6)
    /// A hardware display token: its serial and seed, from the manufacturer's import file.
    case hotp(serial: String, secret: [UInt8], digits: Int = 6, algorithm: OTPAlgorithm = .sha1)
    /// A hardware display token from the inventory (`importHardwareTokens`): the holder gives only the serial.
    case hardware(serial: String)
    /// Codes by SMS to the registered mobile number.
    case sms
}

/// What the holder needs to prove the device: for TOTP the secret and its URI (for the QR code).
public struct ActivationChallenge: Sendable {
    public var kind: OTPKind
    public var secret: [UInt8]?
    public var otpauthURI: String?
    /// Last digits of the mobile number the SMS went to.
    public var smsSentTo: String?
}

/// Prepares the OTP device a holder binds (activation, lost device) and checks its first code.
struct OTPDevices: Sendable {
    let store: any OTPStore & EnrollmentStore
    let sms: SMSSender
    /// Issuer shown by authenticator apps.
    let issuer: String

    /// A device the holder will prove with a first code: for TOTP a new secret and its `otpauth://` URI, for a
    /// hardware token the imported seed, for SMS a code for `purpose` sent now.
    func prepare(_ device: DeviceChoice, for holder: Holder, purpose: SMSPurpose = .activation) async throws -> (OTPDevice, ActivationChallenge) {
        var pending: OTPDevice
        var challenge: ActivationChallenge
        switch device {
        case .totp(let algorithm, let digits):
            try Self.checkDigits(digits)
            let secret = TOTP.generateSecret(bytes: algorithm.recommendedSecretLength)
            pending = OTPDevice(id: "pending", holderID: holder.id, kind: .totp, secret: secret, algorithm: algorithm, digits: digits)
            let uri = TOTP.otpauthURI(secret: secret, issuer: self.issuer, account: holder.email, digits: digits, algorithm: algorithm)
            challenge = ActivationChallenge(kind: .totp, secret: secret, otpauthURI: uri)
        case .hotp(let serial, let secret, let digits, let algorithm):
            try Self.checkDigits(digits)
            guard secret.count >= 16 else { throw SigilloError(.invalidRequest, "a hardware token seed has at least 16 bytes") }
            guard !serial.isEmpty, serial.count <= 64 else { throw SigilloError(.invalidRequest, "the hardware token serial is missing") }
            pending = OTPDevice(id: "pending", holderID: holder.id, kind: .hotp, secret: secret, algorithm: algorithm, digits: digits, serial: serial)
            challenge = ActivationChallenge(kind: .hotp)
        case .hardware(let serial):
            let serial = serial.trimmingCharacters(in: .whitespaces)
            guard !serial.isEmpty, serial.count <= 64, let token = try await self.store.hardwareToken(serial: serial) else {
                throw SigilloError(.invalidRequest, "unknown hardware token serial; check the number on the back of the token")
            }
            pending = OTPDevice(id: "pending", holderID: holder.id, kind: .hotp, secret: token.seed, algorithm: token.algorithm, digits: token.digits, serial: serial)
            challenge = ActivationChallenge(kind: .hotp)
        case .sms:
            pending = OTPDevice(id: "pending", holderID: holder.id, kind: .sms, secret: [])
            try await self.sms.sendCode(to: holder, for: purpose)
            challenge = ActivationChallenge(kind: .sms, smsSentTo: String(holder.mobile.suffix(3)))
        }
        return (pending, challenge)
    }

    /// Checks the first code of a device being bound; returns it with its counter or last step advanced, or nil.
    func prove(_ device: OTPDevice, otp: String, holder: Holder, now: Date, purpose: SMSPurpose = .activation) async throws -> OTPDevice? {
        var device = device
        switch device.kind {
        case .totp:
            guard let step = TOTP.verify(code: otp, secret: device.secret, time: now, lastUsedStep: nil, digits: device.digits, algorithm: device.algorithm) else {
                return nil
            }
            device.lastStep = step
        case .hotp:
            guard let next = HOTP.verify(code: otp, secret: device.secret, counter: device.counter, digits: device.digits, algorithm: device.algorithm) else {
                return nil
            }
            device.counter = next
        case .sms:
            guard try await self.store.checkSMSCode(holderID: holder.id, purpose: purpose, codeHash: Secrets.digest(otp), now: now, tries: SMSPurpose.tries) == .accepted else {
                return nil
            }
        }
        return device
    }

    private static func checkDigits(_ digits: Int) throws {
        guard HOTP.digitRange.contains(digits) else { throw SigilloError(.invalidRequest, "OTP codes have 6 to 8 digits") }
    }
}
