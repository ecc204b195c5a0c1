internal import CPKCS11

/// Key pair algorithms generated inside the token.
public enum KeyAlgorithm: String, CaseIterable, Hashable, Sendable, Codable {
    case ecP256 = "ecdsa-p256"
    case ecP384 = "ecdsa-p384"
    case rsa2048 = "rsa-2048"
    case rsa3072 = "rsa-3072"
    case rsa4096 = "rsa-4096"

    /// Whether this is an RSA key (otherwise an EC key).
    public var isRSA: Bool {
        switch self {
        case .rsa2048, .rsa3072, .rsa4096: return true
        case .ecP256, .ecP384: return false
        }
    }

    /// Key size in bits (the curve size for EC keys).
    public var bits: Int {
        switch self {
        case .ecP256: return 256
        case .ecP384: return 384
        case .rsa2048: return 2048
        case .rsa3072: return 3072
        case .rsa4096: return 4096
        }
    }

    /// The largest signature the token returns for this key (raw r‖s for EC).
    var maxRawSignatureLength: Int {
        self.isRSA ? self.bits / 8 : 2 * ((self.bits + 7) / 8)
    }

    /// DER of the named curve's OID (`CKA_EC_PARAMS`).
    var curveOIDDER: [UInt8]? {
        switch self {
        case .ecP256: return [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
        case .ecP384: return [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22]
        default: return nil
        }
    }

    /// The algorithm for an EC key whose `CKA_EC_PARAMS` are `params`, or an RSA key of `modulusBits`.
    static func identify(keyType: CK_KEY_TYPE, ecParams: [UInt8]?, modulusBits: Int?) -> KeyAlgorithm? {
        if keyType == UInt(CKK_RSA) {
            return Self.allCases.first { $0.isRSA && $0.bits == modulusBits }
        }
        if keyType == UInt(CKK_EC) {
            return Self.allCases.first { $0.curveOIDDER != nil && $0.curveOIDDER == ecParams }
        }
        return nil
    }
}

/// Hash algorithms of the digests we sign.
public enum HashAlgorithm: String, CaseIterable, Hashable, Sendable, Codable {
    case sha256
    case sha384
    case sha512

    /// The digest's length in bytes.
    public var digestLength: Int {
        switch self {
        case .sha256: return 32
        case .sha384: return 48
        case .sha512: return 64
        }
    }

    /// The hash algorithm whose digests are `length` bytes long.
    public init?(digestLength length: Int) {
        guard let match = Self.allCases.first(where: { $0.digestLength == length }) else { return nil }
        self = match
    }

    /// The DER prefix of PKCS#1 v1.5 `DigestInfo` for this hash (RFC 8017 §9.2 note 1). Package-visible for the
    /// raw benchmark loop, which must hand `C_Sign` exactly what the wrapper does.
    package var digestInfoPrefix: [UInt8] {
        switch self {
        case .sha256: return [0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20]
        case .sha384: return [0x30, 0x41, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30]
        case .sha512: return [0x30, 0x51, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40]
        }
    }

    var pkcs11Mechanism: CK_MECHANISM_TYPE {
        switch self {
        case .sha256: return CK_MECHANISM_TYPE(CKM_SHA256)
        case .sha384: return CK_MECHANISM_TYPE(CKM_SHA384)
        case .sha512: return CK_MECHANISM_TYPE(CKM_SHA512)
        }
    }

    var mgf1: CK_RSA_PKCS_MGF_TYPE {
        switch self {
        case .sha256: return CK_RSA_PKCS_MGF_TYPE(CKG_MGF1_SHA256)
        case .sha384: return CK_RSA_PKCS_MGF_TYPE(CKG_MGF1_SHA384)
        case .sha512: return CK_RSA_PKCS_MGF_TYPE(CKG_MGF1_SHA512)
        }
    }
}

/// How a digest is signed. The digest is always computed by the caller; the token never hashes again.
public enum SignatureMechanism: Hashable, Sendable {
    /// ECDSA over the digest (`CKM_ECDSA`); the signature is returned DER-encoded (`ECDSA-Sig-Value`).
    case ecdsa(HashAlgorithm)
    /// RSA PKCS#1 v1.5: the `DigestInfo` is built here and signed with `CKM_RSA_PKCS`.
    case rsaPKCS1v15(HashAlgorithm)
    /// RSASSA-PSS with MGF1 of the same hash and a salt as long as the digest (`CKM_RSA_PKCS_PSS`).
    case rsaPSS(HashAlgorithm)

    /// The hash algorithm of the digests signed.
    public var hash: HashAlgorithm {
        switch self {
        case .ecdsa(let hash), .rsaPKCS1v15(let hash), .rsaPSS(let hash): return hash
        }
    }

    /// Whether the mechanism needs an RSA key (otherwise an EC key).
    public var isRSA: Bool {
        if case .ecdsa = self { return false }
        return true
    }
}
