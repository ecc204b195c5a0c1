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

// MARK: - Wire format

struct CSCLoginRequest: Encodable {
    let rememberMe: Bool
}

struct CSCLoginResponse: Decodable {
    let access_token: String
    let expires_in: LenientInt?
}

struct CSCEmptyRequest: Encodable {}

struct CSCListResponse: Decodable {
    let credentialIDs: [String]
}

struct CSCInfoRequest: Encodable {
    let credentialID: String
    let certificates: String
    let certInfo: Bool
    let authInfo: Bool
}

struct CSCInfoResponse: Decodable {
    struct Key: Decodable {
        let status: String?
        let algo: [String]?
        let len: LenientInt?
    }

    struct Cert: Decodable {
        let status: String?
        let certificates: [String]?
    }

    struct OTP: Decodable {
        let presence: LenientString?
        let type: String?
    }

    let key: Key?
    let cert: Cert?
    let multisign: LenientInt?
    let authMode: String?
    let OTP: OTP?
    let SCAL: LenientString?
}

struct CSCAuthorizeRequest: Encodable {
    let credentialID: String
    let numSignatures: Int
    let hash: [String]
    let PIN: String?
    let OTP: String?
}

struct CSCAuthorizeResponse: Decodable {
    let SAD: String
    let expiresIn: LenientInt?
}

struct CSCSignHashRequest: Encodable {
    let credentialID: String
    let SAD: String
    let hash: [String]
    let hashAlgo: String
    let signAlgo: String
}

struct CSCSignHashResponse: Decodable {
    let signatures: [String]
}

struct CSCErrorResponse: Decodable {
    let error: String
    let error_description: String?
}

/// An integer that some services send as a JSON number and others as a string.
struct LenientInt: Decodable, Hashable {
    let value: Int

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            self.value = number
        } else if let text = try? container.decode(String.self), let number = Int(text) {
            self.value = number
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an integer")
        }
    }
}

/// A value that some services send as a string and others as a boolean or a number.
struct LenientString: Decodable, Hashable {
    let value: String

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self.value = text
        } else if let flag = try? container.decode(Bool.self) {
            self.value = flag ? "true" : "false"
        } else if let number = try? container.decode(Int.self) {
            self.value = String(number)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a string")
        }
    }
}

enum CSCBase64 {
    static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// Decodes base64 or base64url, padded or not.
    static func decode(_ text: String) -> [UInt8]? {
        if let bytes = Base64Text.decodeASCII(text) { return bytes }
        var normalized = text.trimmingCharacters(in: .whitespacesAndNewlines)
            .replacingOccurrences(of: "-", with: "+")
            .replacingOccurrences(of: "_", with: "/")
        while normalized.count % 4 != 0 { normalized += "=" }
        return Data(base64Encoded: normalized, options: .ignoreUnknownCharacters).map { Array($0) }
    }
}
