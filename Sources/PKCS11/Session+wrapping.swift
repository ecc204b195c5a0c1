internal import CPKCS11

/// How a holder's private key is wrapped under the KEK: the PKCS#11 mechanism and its parameter.
public struct WrapMechanism: Hashable, Sendable {
    /// The mechanism (`CKM_AES_KEY_WRAP_PAD`, or `CKM_AES_CBC_PAD` where the module has no RFC 5649).
    public let type: UInt
    /// The initialisation vector of `CKM_AES_CBC_PAD` (16 random bytes); empty for `CKM_AES_KEY_WRAP_PAD`.
    public let iv: [UInt8]

    /// RFC 5649 AES key wrap with padding (SoftHSM 2.6 lists it as 0x210A), with its default IV.
    public static let aesKeyWrapPad = WrapMechanism(type: UInt(CKM_AES_KEY_WRAP_PAD), iv: [])

    /// AES-CBC with PKCS#7 padding under `iv`: the fallback for modules without RFC 5649 (the blob's integrity then
    /// rests on the binding MAC alone, which every blob has anyway).
    public static func aesCBCPad(iv: [UInt8]) -> WrapMechanism { WrapMechanism(type: UInt(CKM_AES_CBC_PAD), iv: iv) }

    public init(type: UInt, iv: [UInt8]) {
        self.type = type
        self.iv = iv
    }

    /// The mechanism's name for logs and the README.
    public var name: String {
        switch self.type {
        case UInt(CKM_AES_KEY_WRAP_PAD): return "CKM_AES_KEY_WRAP_PAD"
        case UInt(CKM_AES_CBC_PAD): return "CKM_AES_CBC_PAD"
        default: return "0x" + String(self.type, radix: 16)
        }
    }

    /// Runs `body` with the `CK_MECHANISM` (its parameter alive for the call).
    func withMechanism<T>(_ body: (UnsafeMutablePointer<CK_MECHANISM>) throws(PKCS11Error) -> T) throws(PKCS11Error) -> T {
        let parameter = UnsafeMutableRawBufferPointer.allocate(byteCount: max(self.iv.count, 1), alignment: 8)
        defer { parameter.deallocate() }
        self.iv.withUnsafeBytes { if !$0.isEmpty { parameter.copyMemory(from: $0) } }
        var mechanism = CK_MECHANISM(
            mechanism: CK_MECHANISM_TYPE(self.type), pParameter: self.iv.isEmpty ? nil : parameter.baseAddress,
            ulParameterLen: CK_ULONG(self.iv.count))
        return try body(&mechanism)
    }
}

extension Session {
    /// The mechanisms the token in `slot` offers (`C_GetMechanismList`).
    func mechanisms(slot: SlotID) throws(PKCS11Error) -> Set<UInt> {
        let list = try self.module.function(\.C_GetMechanismList, "C_GetMechanismList")
        var count: CK_ULONG = 0
        try check(list(CK_SLOT_ID(slot.rawValue), nil, &count), "C_GetMechanismList")
        var types = [CK_MECHANISM_TYPE](repeating: 0, count: Int(count))
        try check(types.withUnsafeMutableBufferPointer { list(CK_SLOT_ID(slot.rawValue), $0.baseAddress, &count) }, "C_GetMechanismList")
        return Set(types.prefix(Int(count)).map { UInt($0) })
    }

    /// Whether the token in `slot` can wrap and unwrap with `type` (`C_GetMechanismInfo` flags).
    func canWrap(with type: UInt, slot: SlotID) throws(PKCS11Error) -> Bool {
        let getInfo = try self.module.function(\.C_GetMechanismInfo, "C_GetMechanismInfo")
        var info = CK_MECHANISM_INFO()
        let rv = getInfo(CK_SLOT_ID(slot.rawValue), CK_MECHANISM_TYPE(type), &info)
        if rv == UInt(CKR_MECHANISM_INVALID) { return false }
        try check(rv, "C_GetMechanismInfo")
        let needed = CK_FLAGS(CKF_WRAP) | CK_FLAGS(CKF_UNWRAP)
        return info.flags & needed == needed
    }

    /// The mechanism to wrap holder keys with: `CKM_AES_KEY_WRAP_PAD` when the token offers it for wrap and unwrap, else
    /// `CKM_AES_CBC_PAD` when it does; nil when neither (p11-kit 0.24's RPC client, for one, carries neither).
    func wrapMechanismType(slot: SlotID) throws(PKCS11Error) -> UInt? {
        let offered = try self.mechanisms(slot: slot)
        for type in [UInt(CKM_AES_KEY_WRAP_PAD), UInt(CKM_AES_CBC_PAD)] where offered.contains(type) {
            if try self.canWrap(with: type, slot: slot) { return type }
        }
        return nil
    }

    /// Generates the key-encryption key in the token: AES-256, a token object, private, sensitive, non-extractable,
    /// and allowed to wrap and unwrap only (no encrypt, decrypt, sign, verify or derive).
    func generateKEK(id: [UInt8], label: String) throws(PKCS11Error) -> ObjectHandle {
        let generate = try self.module.function(\.C_GenerateKey, "C_GenerateKey")
        let template: [Attribute] = [
            .objectClass(.secretKey), .ulong(.keyType, UInt(CKK_AES)), .ulong(.valueLength, 32),
            .bool(.token, true), .bool(.private, true), .bool(.sensitive, true), .bool(.extractable, false),
            .bool(.wrap, true), .bool(.unwrap, true), .bool(.encrypt, false), .bool(.decrypt, false),
            .bool(.sign, false), .bool(.verify, false), .bool(.derive, false),
            .bytes(.id, id), .bytes(.label, Array(label.utf8)),
        ]
        var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_AES_KEY_GEN), pParameter: nil, ulParameterLen: 0)
        var key: CK_OBJECT_HANDLE = 0
        try Attribute.withTemplate(template) { pointer, count throws(PKCS11Error) in
            try check(generate(self.handle, &mechanism, pointer, count, &key), "C_GenerateKey")
        }
        return ObjectHandle(rawValue: UInt(key))
    }

    /// A boolean attribute of `object` (false when the module does not have it).
    func flag(_ type: AttributeType, of object: ObjectHandle) throws(PKCS11Error) -> Bool {
        do {
            return try self.attribute(type, of: object).first.map { $0 != 0 } ?? false
        } catch where error.rv == .attributeTypeInvalid {
            return false
        }
    }

    /// `C_WrapKey`: `key` encrypted under `kek` with `mechanism` (two-call convention).
    func wrapKey(_ key: ObjectHandle, kek: ObjectHandle, mechanism: WrapMechanism) throws(PKCS11Error) -> [UInt8] {
        let wrap = try self.module.function(\.C_WrapKey, "C_WrapKey")
        return try mechanism.withMechanism { pointer throws(PKCS11Error) in
            var length: CK_ULONG = 0
            try check(wrap(self.handle, pointer, CK_OBJECT_HANDLE(kek.rawValue), CK_OBJECT_HANDLE(key.rawValue), nil, &length), "C_WrapKey")
            var output = [UInt8](repeating: 0, count: Int(length))
            let rv = output.withUnsafeMutableBufferPointer { wrap(self.handle, pointer, CK_OBJECT_HANDLE(kek.rawValue), CK_OBJECT_HANDLE(key.rawValue), $0.baseAddress, &length) }
            try check(rv, "C_WrapKey")
            return Array(output.prefix(Int(length)))
        }
    }

    /// `C_UnwrapKey` into a session object: a private key of `algorithm`, `CKA_TOKEN` false, private, sensitive,
    /// non-extractable, sign-only.
    package func unwrapPrivateKey(_ blob: [UInt8], kek: ObjectHandle, mechanism: WrapMechanism, algorithm: KeyAlgorithm, id: [UInt8]) throws(PKCS11Error) -> ObjectHandle {
        let unwrap = try self.module.function(\.C_UnwrapKey, "C_UnwrapKey")
        let template: [Attribute] = [
            .objectClass(.privateKey), .ulong(.keyType, UInt(algorithm.isRSA ? CKK_RSA : CKK_EC)),
            .bool(.token, false), .bool(.private, true), .bool(.sensitive, true), .bool(.extractable, false),
            .bool(.sign, true), .bool(.decrypt, false), .bool(.unwrap, false), .bool(.derive, false),
            .bytes(.id, id),
        ]
        var blob = blob
        var key: CK_OBJECT_HANDLE = 0
        try mechanism.withMechanism { pointer throws(PKCS11Error) in
            try Attribute.withTemplate(template) { attributes, count throws(PKCS11Error) in
                let rv = blob.withUnsafeMutableBufferPointer {
                    unwrap(self.handle, pointer, CK_OBJECT_HANDLE(kek.rawValue), $0.baseAddress, CK_ULONG($0.count), attributes, count, &key)
                }
                try check(rv, "C_UnwrapKey")
            }
        }
        return ObjectHandle(rawValue: UInt(key))
    }
}
