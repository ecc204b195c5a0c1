import Foundation

// The CSC API v1 wire format as a client sends and reads it.

public struct CSCLoginRequest: Encodable {
    public let rememberMe: Bool
    public init(rememberMe: Bool) {
        self.rememberMe = rememberMe
    }
}

public struct CSCLoginResponse: Decodable {
    public let access_token: String
    public let expires_in: LenientInt?
}

public struct CSCEmptyRequest: Encodable {
    public init() {}
}

public struct CSCListResponse: Decodable {
    public let credentialIDs: [String]
    public init(credentialIDs: [String]) {
        self.credentialIDs = credentialIDs
    }
}

public struct CSCInfoRequest: Encodable {
    public let credentialID: String
    public let certificates: String
    public let certInfo: Bool
    public let authInfo: Bool
    public init(credentialID: String, certificates: String, certInfo: Bool, authInfo: Bool) {
        self.credentialID = credentialID
        self.certificates = certificates
        self.certInfo = certInfo
        self.authInfo = authInfo
    }
}

public struct CSCInfoResponse: Decodable {
    public struct Key: Decodable {
        public let status: String?
        public let algo: [String]?
        public let len: LenientInt?
    }

    public struct Cert: Decodable {
        public let status: String?
        public let certificates: [String]?
    }

    public struct OTP: Decodable {
        public let presence: LenientString?
        public let type: String?
    }

    public let key: Key?
    public let cert: Cert?
    public let multisign: LenientInt?
    public let authMode: String?
    public let OTP: OTP?
    public let SCAL: LenientString?
}

public struct CSCAuthorizeRequest: Encodable {
    public let credentialID: String
    public let numSignatures: Int
    public let hash: [String]
    public let PIN: String?
    public let OTP: String?
    public init(credentialID: String, numSignatures: Int, hash: [String], PIN: String?, OTP: String?) {
        self.credentialID = credentialID
        self.numSignatures = numSignatures
        self.hash = hash
        self.PIN = PIN
        self.OTP = OTP
    }
}

public struct CSCAuthorizeResponse: Decodable {
    public let SAD: String
    public let expiresIn: LenientInt?
}

public struct CSCSignHashRequest: Encodable {
    public let credentialID: String
    public let SAD: String
    public let hash: [String]
    public let hashAlgo: String
    public let signAlgo: String
    public init(credentialID: String, SAD: String, hash: [String], hashAlgo: String, signAlgo: String) {
        self.credentialID = credentialID
        self.SAD = SAD
        self.hash = hash
        self.hashAlgo = hashAlgo
        self.signAlgo = signAlgo
    }
}

public struct CSCSignHashResponse: Decodable {
    public let signatures: [String]
}

public struct CSCErrorResponse: Decodable {
    public let error: String
    public let error_description: String?
}

/// An integer that some services send as a JSON number and others as a string.
public struct LenientInt: Decodable, Hashable {
    public let value: Int

    public init(from decoder: any Decoder) throws {
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
public struct LenientString: Decodable, Hashable {
    public let value: String

    public init(from decoder: any Decoder) throws {
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
