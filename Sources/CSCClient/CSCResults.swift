import Foundation

/// `auth/login` answer.
public struct CSCAccessToken: Hashable, Sendable {
    public let accessToken: String
    /// Seconds, when the service says.
    public let expiresIn: Int?
}

/// `credentials/info` answer (the fields a signing client needs).
public struct CSCCredentialInfo: Hashable, Sendable {
    /// `key.status`: `enabled` or `disabled`.
    public let keyStatus: String?
    /// `key.algo`: dotted OIDs of the signature algorithms the key supports.
    public let keyAlgorithms: [String]
    /// `key.len`: key length in bits.
    public let keyLength: Int?
    /// `cert.status`: `valid`, `expired`, `revoked`, `suspended`.
    public let certificateStatus: String?
    /// `cert.certificates`, decoded: the signer's certificate first, then the chain.
    public let certificates: [[UInt8]]
    /// `multisign`: how many signatures one authorization may cover (1 when absent).
    public let multisign: Int
    /// `authMode`: `explicit`, `implicit` or `oauth2code`.
    public let authMode: String?
    /// `OTP.presence`: `true`, `false` or `optional`… (CSC v1 uses strings).
    public let otpPresence: String?
    /// `OTP.type`: `offline` or `online`.
    public let otpType: String?
    /// `SCAL`: `1` or `2`.
    public let scal: String?
}

/// `credentials/authorize` answer.
public struct CSCAuthorization: Hashable, Sendable {
    /// Signature activation data, to pass to `signatures/signHash`.
    public let sad: String
    /// Seconds, when the service says.
    public let expiresIn: Int?
}
