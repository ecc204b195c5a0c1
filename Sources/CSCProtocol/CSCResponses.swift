// The answers of the CSC API methods, one type for the service (which encodes them) and its clients (which
// decode them leniently: numbers as strings, booleans as strings, missing optional parts).

/// `info`.
public struct CSCInfoResponse: Codable, Sendable, Equatable {
    public struct SignAlgorithms: Codable, Sendable, Equatable {
        public var algos: [String]

        public init(algos: [String]) {
            self.algos = algos
        }
    }

    public var specs: String
    public var name: String
    public var logo: String
    public var region: String
    public var lang: String
    public var description: String
    public var authType: [String]
    /// The OAuth2 authorization server's base URI (with `oauth2code` in `authType`).
    public var oauth2: String?
    /// v2: its issuer identifier (RFC 8414).
    public var oauth2Issuer: String?
    /// v2: whether it takes RAR `authorization_details` (RFC 9396).
    public var supportsRar: Bool?
    public var methods: [String]
    /// v2 only.
    public var signAlgorithms: SignAlgorithms?

    public init(specs: String, name: String, logo: String, region: String, lang: String, description: String, authType: [String], methods: [String],
                signAlgorithms: SignAlgorithms? = nil, oauth2: String? = nil, oauth2Issuer: String? = nil, supportsRar: Bool? = nil) {
        self.oauth2 = oauth2
        self.oauth2Issuer = oauth2Issuer
        self.supportsRar = supportsRar
        self.specs = specs
        self.name = name
        self.logo = logo
        self.region = region
        self.lang = lang
        self.description = description
        self.authType = authType
        self.methods = methods
        self.signAlgorithms = signAlgorithms
    }
}

/// `auth/login`.
public struct CSCLoginResponse: Codable, Sendable, Equatable {
    public var accessToken: String
    public var tokenType: String?
    /// Seconds.
    public var expiresIn: Int?

    public init(accessToken: String, tokenType: String? = "Bearer", expiresIn: Int?) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.expiresIn = expiresIn
    }

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case tokenType = "token_type"
        case expiresIn = "expires_in"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.accessToken = try container.decode(String.self, forKey: .accessToken)
        self.tokenType = container.decodeLenientString(forKey: .tokenType)
        self.expiresIn = try container.decodeLenientInt(forKey: .expiresIn)
    }
}

/// `credentials/list`.
public struct CSCListResponse: Codable, Sendable, Equatable {
    public var credentialIDs: [String]
    /// v2 with `credentialInfo`: each credential's `credentials/info`, with its `credentialID`.
    public var credentialInfos: [CSCCredentialInfoResponse]?
    /// v2: whether only valid credentials were listed (`onlyValid` was asked and is supported).
    public var onlyValid: Bool?

    public init(credentialIDs: [String], credentialInfos: [CSCCredentialInfoResponse]? = nil, onlyValid: Bool? = nil) {
        self.credentialIDs = credentialIDs
        self.credentialInfos = credentialInfos
        self.onlyValid = onlyValid
    }
}

/// `credentials/info`.
public struct CSCCredentialInfoResponse: Codable, Sendable, Equatable {
    public struct Key: Codable, Sendable, Equatable {
        /// `enabled` or `disabled`.
        public var status: String?
        /// Dotted OIDs: the key's algorithm and every signature algorithm it makes.
        public var algo: [String]?
        /// Bits.
        public var len: Int?
        /// The EC curve's OID.
        public var curve: String?

        public init(status: String?, algo: [String]?, len: Int?, curve: String? = nil) {
            self.status = status
            self.algo = algo
            self.len = len
            self.curve = curve
        }

        enum CodingKeys: String, CodingKey { case status, algo, len, curve }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.status = container.decodeLenientString(forKey: .status)
            self.algo = try container.decodeIfPresent([String].self, forKey: .algo)
            self.len = try container.decodeLenientInt(forKey: .len)
            self.curve = container.decodeLenientString(forKey: .curve)
        }
    }

    public struct Cert: Codable, Sendable, Equatable {
        /// `valid`, `expired`, `revoked`, `suspended`, `invalid`.
        public var status: String?
        /// Base64 DER: the signer's certificate first, then the chain.
        public var certificates: [String]?
        public var issuerDN: String?
        public var subjectDN: String?
        public var serialNumber: String?
        /// `YYYYMMDDHHMMSSZ`.
        public var validFrom: String?
        public var validTo: String?

        public init(status: String?, certificates: [String]? = nil, issuerDN: String? = nil, subjectDN: String? = nil, serialNumber: String? = nil,
                    validFrom: String? = nil, validTo: String? = nil) {
            self.status = status
            self.certificates = certificates
            self.issuerDN = issuerDN
            self.subjectDN = subjectDN
            self.serialNumber = serialNumber
            self.validFrom = validFrom
            self.validTo = validTo
        }
    }

    /// How the PIN (CSC) or OTP is asked for.
    public struct AuthenticationFactor: Codable, Sendable, Equatable {
        /// `true`, `false` or `optional` (v1 sends strings; some services booleans).
        public var presence: String?
        /// OTP only: `offline` or `online`.
        public var type: String?
        /// `A` (alphanumeric) or `N` (numeric).
        public var format: String?
        public var label: String?
        public var description: String?
        /// OTP only: the device kind.
        public var ID: String?

        public init(presence: String?, type: String? = nil, format: String?, label: String?, description: String?, ID: String? = nil) {
            self.presence = presence
            self.type = type
            self.format = format
            self.label = label
            self.description = description
            self.ID = ID
        }

        enum CodingKeys: String, CodingKey { case presence, type, format, label, description, ID }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.presence = container.decodeLenientString(forKey: .presence)
            self.type = container.decodeLenientString(forKey: .type)
            self.format = container.decodeLenientString(forKey: .format)
            self.label = container.decodeLenientString(forKey: .label)
            self.description = container.decodeLenientString(forKey: .description)
            self.ID = container.decodeLenientString(forKey: .ID)
        }
    }

    public var description: String?
    public var key: Key?
    public var cert: Cert?
    /// `explicit`, `implicit` or `oauth2code`.
    public var authMode: String?
    /// `1` or `2`, a string.
    public var SCAL: String?
    /// How many signatures one authorization may cover.
    public var multisign: Int?
    public var lang: String?
    public var PIN: AuthenticationFactor?
    public var OTP: AuthenticationFactor?
    /// v2 `credentials/list` entries.
    public var credentialID: String?
    /// v2: how signatures are authorized.
    public var auth: Auth?

    /// v2 `auth`: the mode (`explicit`, `oauth2code`) and, for explicit, the objects `authData` carries.
    public struct Auth: Codable, Sendable, Equatable {
        public var mode: String
        public var expression: String?
        public var objects: [AuthObject]?

        public init(mode: String, expression: String? = nil, objects: [AuthObject]? = nil) {
            self.mode = mode
            self.expression = expression
            self.objects = objects
        }
    }

    /// One v2 authentication object (`type` `Password`, its `id` as `authData` names it).
    public struct AuthObject: Codable, Sendable, Equatable {
        public var type: String
        public var id: String
        public var format: String?
        public var label: String?
        public var description: String?
        public var generator: String?

        public init(type: String, id: String, format: String? = nil, label: String? = nil, description: String? = nil, generator: String? = nil) {
            self.type = type
            self.id = id
            self.format = format
            self.label = label
            self.description = description
            self.generator = generator
        }
    }

    public init(description: String?, key: Key?, cert: Cert?, authMode: String?, SCAL: String?, multisign: Int?, lang: String?,
                PIN: AuthenticationFactor? = nil, OTP: AuthenticationFactor? = nil) {
        self.description = description
        self.key = key
        self.cert = cert
        self.authMode = authMode
        self.SCAL = SCAL
        self.multisign = multisign
        self.lang = lang
        self.PIN = PIN
        self.OTP = OTP
    }

    enum CodingKeys: String, CodingKey { case description, key, cert, authMode, SCAL, multisign, lang, PIN, OTP, credentialID, auth }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.description = container.decodeLenientString(forKey: .description)
        self.key = try container.decodeIfPresent(Key.self, forKey: .key)
        self.cert = try container.decodeIfPresent(Cert.self, forKey: .cert)
        self.authMode = container.decodeLenientString(forKey: .authMode)
        self.SCAL = container.decodeLenientString(forKey: .SCAL)
        self.multisign = try container.decodeLenientInt(forKey: .multisign)
        self.lang = container.decodeLenientString(forKey: .lang)
        self.PIN = try container.decodeIfPresent(AuthenticationFactor.self, forKey: .PIN)
        self.OTP = try container.decodeIfPresent(AuthenticationFactor.self, forKey: .OTP)
        self.credentialID = container.decodeLenientString(forKey: .credentialID)
        self.auth = try? container.decodeIfPresent(Auth.self, forKey: .auth)
    }
}

/// `credentials/authorize` and `credentials/extendTransaction`.
public struct CSCAuthorizeResponse: Codable, Sendable, Equatable {
    public var SAD: String
    /// Seconds.
    public var expiresIn: Int?

    public init(SAD: String, expiresIn: Int?) {
        self.SAD = SAD
        self.expiresIn = expiresIn
    }

    enum CodingKeys: String, CodingKey { case SAD, expiresIn }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.SAD = try container.decode(String.self, forKey: .SAD)
        self.expiresIn = try container.decodeLenientInt(forKey: .expiresIn)
    }
}

/// `signatures/signHash`: base64 signatures in the order of the hashes.
public struct CSCSignHashResponse: Codable, Sendable, Equatable {
    public var signatures: [String]

    public init(signatures: [String]) {
        self.signatures = signatures
    }
}

/// Every error: `{"error", "error_description"}`.
public struct CSCErrorResponse: Codable, Sendable, Equatable {
    public var error: String
    public var errorDescription: String?

    public init(error: String, errorDescription: String?) {
        self.error = error
        self.errorDescription = errorDescription
    }

    enum CodingKeys: String, CodingKey {
        case error
        case errorDescription = "error_description"
    }
}

/// CSC v2 `signatures/timestamp` as a client sends it: one digest (`hash`, base64), its algorithm, and an optional nonce.
public struct CSCTimestampRequest: Codable, Sendable, Equatable {
    public var hash: String
    public var hashAlgo: String
    /// Hex digits, at most 32 bytes.
    public var nonce: String?
    public var clientData: String?

    public init(hash: String, hashAlgo: String, nonce: String? = nil, clientData: String? = nil) {
        self.hash = hash
        self.hashAlgo = hashAlgo
        self.nonce = nonce
        self.clientData = clientData
    }
}

/// CSC v2 `signatures/timestamp`'s answer: the RFC 3161 `TimeStampToken` (a CMS `ContentInfo`), base64.
public struct CSCTimestampResponse: Codable, Sendable, Equatable {
    public var timestamp: String

    public init(timestamp: String) {
        self.timestamp = timestamp
    }
}
