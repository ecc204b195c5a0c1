/// The body of every CSC API method (v1 and v2 field names), one type for the service and its clients.
///
/// Decoding is lenient, as real clients need: every field optional (each method checks what it needs), unknown keys
/// ignored, v1 and v2 names accepted on both versions, numbers and booleans accepted as strings. Encoding writes
/// only the fields that are set.
public struct CSCRequest: Codable, Sendable, Equatable {
    public var credentialID: String?
    public var numSignatures: Int?
    /// v1 digests (base64); `signatures/timestamp` sends one as a plain string, decoded as a list of one.
    public var hash: [String]?
    /// v2 digests (base64).
    public var hashes: [String]?
    /// v1 hash algorithm OID.
    public var hashAlgo: String?
    /// v2 hash algorithm OID.
    public var hashAlgorithmOID: String?
    public var signAlgo: String?
    /// Base64 DER parameters of `signAlgo` (RSASSA-PSS-params).
    public var signAlgoParams: String?
    /// v1: the holder's PIN (here, the password).
    public var PIN: String?
    /// v1: the one-time password.
    public var OTP: String?
    /// v2: `[{id: "PIN"|"OTP", value}]`.
    public var authData: [AuthData]?
    public var SAD: String?
    /// `credentials/info`: `none`, `single` or `chain`.
    public var certificates: String?
    public var certInfo: Bool?
    public var authInfo: Bool?
    /// v2 `credentials/list`: give each credential's details (`credentialInfos`).
    public var credentialInfo: Bool?
    /// v2 `credentials/list`: only credentials that can sign now (enabled key, valid certificate).
    public var onlyValid: Bool?
    /// `auth/revoke`: the token to revoke (the caller's own when absent).
    public var token: String?
    /// `auth/login`: keep the session longer (not offered; sent by some clients).
    public var rememberMe: Bool?
    public var clientData: String?
    /// `signatures/timestamp`: the client's nonce for the time-stamp token (hex, or decimal digits).
    public var nonce: String?

    /// One item of v2 `authData`.
    public struct AuthData: Codable, Sendable, Equatable {
        public var id: String
        public var value: String

        public init(id: String, value: String) {
            self.id = id
            self.value = value
        }
    }

    public init(
        credentialID: String? = nil, numSignatures: Int? = nil, hash: [String]? = nil, hashes: [String]? = nil, hashAlgo: String? = nil,
        hashAlgorithmOID: String? = nil, signAlgo: String? = nil, signAlgoParams: String? = nil, PIN: String? = nil, OTP: String? = nil,
        authData: [AuthData]? = nil, SAD: String? = nil, certificates: String? = nil, certInfo: Bool? = nil, authInfo: Bool? = nil,
        token: String? = nil, rememberMe: Bool? = nil, clientData: String? = nil, nonce: String? = nil, credentialInfo: Bool? = nil, onlyValid: Bool? = nil
    ) {
        self.credentialInfo = credentialInfo
        self.onlyValid = onlyValid
        self.nonce = nonce
        self.credentialID = credentialID
        self.numSignatures = numSignatures
        self.hash = hash
        self.hashes = hashes
        self.hashAlgo = hashAlgo
        self.hashAlgorithmOID = hashAlgorithmOID
        self.signAlgo = signAlgo
        self.signAlgoParams = signAlgoParams
        self.PIN = PIN
        self.OTP = OTP
        self.authData = authData
        self.SAD = SAD
        self.certificates = certificates
        self.certInfo = certInfo
        self.authInfo = authInfo
        self.token = token
        self.rememberMe = rememberMe
        self.clientData = clientData
    }

    enum CodingKeys: String, CodingKey {
        case credentialID, numSignatures, hash, hashes, hashAlgo, hashAlgorithmOID, signAlgo, signAlgoParams
        case PIN, OTP, authData, SAD, certificates, certInfo, authInfo, token, rememberMe, clientData, nonce, credentialInfo, onlyValid
    }

    /// - Throws: `CSCRequestError` for a present but unusable `numSignatures`; `DecodingError` for a field of the wrong type.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.credentialID = try container.decodeIfPresent(String.self, forKey: .credentialID)
        self.numSignatures = try container.decodeLenientInt(forKey: .numSignatures)
        if let single = try? container.decodeIfPresent(String.self, forKey: .hash) {
            self.hash = [single]
        } else {
            self.hash = try container.decodeIfPresent([String].self, forKey: .hash)
        }
        self.hashes = try container.decodeIfPresent([String].self, forKey: .hashes)
        self.hashAlgo = try container.decodeIfPresent(String.self, forKey: .hashAlgo)
        self.hashAlgorithmOID = try container.decodeIfPresent(String.self, forKey: .hashAlgorithmOID)
        self.signAlgo = try container.decodeIfPresent(String.self, forKey: .signAlgo)
        self.signAlgoParams = try container.decodeIfPresent(String.self, forKey: .signAlgoParams)
        self.PIN = try container.decodeIfPresent(String.self, forKey: .PIN)
        self.OTP = try container.decodeIfPresent(String.self, forKey: .OTP)
        self.authData = try container.decodeIfPresent([AuthData].self, forKey: .authData)
        self.SAD = try container.decodeIfPresent(String.self, forKey: .SAD)
        self.certificates = try container.decodeIfPresent(String.self, forKey: .certificates)
        self.certInfo = container.decodeLenientBool(forKey: .certInfo)
        self.authInfo = container.decodeLenientBool(forKey: .authInfo)
        self.credentialInfo = container.decodeLenientBool(forKey: .credentialInfo)
        self.onlyValid = container.decodeLenientBool(forKey: .onlyValid)
        self.token = try container.decodeIfPresent(String.self, forKey: .token)
        self.rememberMe = container.decodeLenientBool(forKey: .rememberMe)
        self.clientData = try container.decodeIfPresent(String.self, forKey: .clientData)
        self.nonce = container.decodeLenientString(forKey: .nonce)
    }

    /// The digests, from `hashes` (v2) or `hash` (v1), decoded from base64 or base64url, padded or not.
    /// - Throws: `CSCRequestError` when missing or not base64.
    public func digests() throws -> [[UInt8]] {
        guard let list = self.hashes ?? self.hash, !list.isEmpty else { throw CSCRequestError("Missing (or invalid type) array parameter hash") }
        return try list.map { text in
            guard let bytes = Base64Text.decodeLenient(text) else { throw CSCRequestError("Invalid Base64 hash string parameter") }
            return bytes
        }
    }

    /// The PIN and OTP, from v1 fields or v2 `authData` (`PIN`/`PASSWORD` and `OTP`, any case).
    public func credentials() -> (pin: String?, otp: String?) {
        var pin = self.PIN
        var otp = self.OTP
        for item in self.authData ?? [] {
            switch item.id.uppercased() {
            case "PIN", "PASSWORD": pin = pin ?? item.value
            case "OTP": otp = otp ?? item.value
            default: break
            }
        }
        return (pin, otp)
    }

    /// - Throws: `CSCRequestError` when `credentialID` is missing or empty.
    public func requireCredentialID() throws -> String {
        guard let id = self.credentialID, !id.isEmpty else { throw CSCRequestError("Missing (or invalid type) string parameter credentialID") }
        return id
    }
}
