/// `POST /activation/v1/begin`: the invitation code and the device the holder chose.
public struct ActivationBeginRequest: Codable, Sendable, Equatable {
    public var code: String
    /// `totp` (app), `hotp` (hardware token, with `serial` and maybe `seed`) or `sms`.
    public var device: String
    public var serial: String?
    /// A hardware token's seed, hex or base32 (normally in the operator's inventory instead).
    public var seed: String?
    public var digits: Int?

    public init(code: String, device: String, serial: String? = nil, seed: String? = nil, digits: Int? = nil) {
        self.code = code
        self.device = device
        self.serial = serial
        self.seed = seed
        self.digits = digits
    }
}

/// What `activation/v1/begin` (and a device rebinding) answers: for an app, the secret and its `otpauth://` URI.
public struct ActivationBeginResponse: Codable, Sendable, Equatable {
    public var device: String
    public var otpauthURI: String?
    /// Base32, no padding.
    public var secret: String?
    /// `…` and the last digits of the number the SMS went to.
    public var smsSentTo: String?

    public init(device: String, otpauthURI: String? = nil, secret: String? = nil, smsSentTo: String? = nil) {
        self.device = device
        self.otpauthURI = otpauthURI
        self.secret = secret
        self.smsSentTo = smsSentTo
    }
}

/// `POST /activation/v1/complete`.
public struct ActivationCompleteRequest: Codable, Sendable, Equatable {
    public var code: String
    public var username: String
    public var password: String
    /// A code from the device chosen at `begin`.
    public var otp: String
    /// `ecdsa-p256` (default), `ecdsa-p384`, `rsa-2048`…
    public var keyAlgorithm: String?

    public init(code: String, username: String, password: String, otp: String, keyAlgorithm: String? = nil) {
        self.code = code
        self.username = username
        self.password = password
        self.otp = otp
        self.keyAlgorithm = keyAlgorithm
    }
}

/// What `activation/v1/complete` answers (201): the new credential.
public struct ActivationCompleteResponse: Codable, Sendable, Equatable {
    public var credentialID: String
    public var serialNumber: String
    /// ISO 8601.
    public var notAfter: String
    /// Base64 DER.
    public var certificate: String
    /// The emergency code, shown once.
    public var userCode: String?

    public init(credentialID: String, serialNumber: String, notAfter: String, certificate: String, userCode: String?) {
        self.credentialID = credentialID
        self.serialNumber = serialNumber
        self.notAfter = notAfter
        self.certificate = certificate
        self.userCode = userCode
    }
}
