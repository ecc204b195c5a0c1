internal import CPKCS11

/// One PKCS#11 session. Used by one thread at a time (the worker that owns it), never shared.
public final class Session {
    let module: PKCS11Module
    let handle: CK_SESSION_HANDLE
    /// The module initialisation the session was opened under: after `PKCS11Module.reinitialize` it is gone, and its
    /// handle number may already belong to a new session, which `close()` must not close.
    let generation: UInt64
    private var closed = false
    // The hot path's two functions, looked up once per session rather than per signature.
    private let signInitFunction: CK_C_SignInit?
    private let signFunction: CK_C_Sign?

    /// Opens a read/write session on `slot`.
    init(module: PKCS11Module, slot: SlotID) throws(PKCS11Error) {
        self.module = module
        let open = try module.function(\.C_OpenSession, "C_OpenSession")
        var handle: CK_SESSION_HANDLE = 0
        try check(open(CK_SLOT_ID(slot.rawValue), CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION), nil, nil, &handle), "C_OpenSession")
        self.handle = handle
        self.generation = module.generation
        self.signInitFunction = module.functions.pointee.C_SignInit
        self.signFunction = module.functions.pointee.C_Sign
    }

    /// Logs in; a token already logged in by this process (`CKR_USER_ALREADY_LOGGED_IN`) is fine.
    func login(userType: CK_USER_TYPE = CK_USER_TYPE(CKU_USER), pin: SecretBytes) throws(PKCS11Error) {
        let login = try self.module.function(\.C_Login, "C_Login")
        let rv = try pin.withUnsafeMutableBufferPointer { buffer throws(PKCS11Error) in
            login(self.handle, userType, buffer.baseAddress, CK_ULONG(buffer.count))
        }
        guard rv == UInt(CKR_OK) || rv == UInt(CKR_USER_ALREADY_LOGGED_IN) else {
            throw PKCS11Error.from(rv, function: "C_Login")
        }
    }

    func login(userType: CK_USER_TYPE, pin: String) throws(PKCS11Error) {
        try self.login(userType: userType, pin: SecretBytes(Array(pin.utf8)))
    }

    func logout() throws(PKCS11Error) {
        let logout = try self.module.function(\.C_Logout, "C_Logout")
        let rv = logout(self.handle)
        guard rv == UInt(CKR_OK) || rv == UInt(CKR_USER_NOT_LOGGED_IN) else { throw PKCS11Error.from(rv, function: "C_Logout") }
    }

    func close() {
        guard !self.closed else { return }
        self.closed = true
        guard self.module.generation == self.generation else { return }
        _ = self.module.functions.pointee.C_CloseSession?(self.handle)
    }

    deinit { self.close() }

    /// Asks the token for this session's state: fails when the session or the token went away.
    public func info() throws(PKCS11Error) {
        let getInfo = try self.module.function(\.C_GetSessionInfo, "C_GetSessionInfo")
        var info = CK_SESSION_INFO()
        try check(getInfo(self.handle, &info), "C_GetSessionInfo")
    }

    // MARK: Objects

    /// Handles of the objects matching every attribute of `template`.
    public func findObjects(_ template: [Attribute]) throws(PKCS11Error) -> [ObjectHandle] {
        let initFind = try self.module.function(\.C_FindObjectsInit, "C_FindObjectsInit")
        let find = try self.module.function(\.C_FindObjects, "C_FindObjects")
        let final = try self.module.function(\.C_FindObjectsFinal, "C_FindObjectsFinal")
        try Attribute.withTemplate(template) { pointer, count throws(PKCS11Error) in
            try check(initFind(self.handle, pointer, count), "C_FindObjectsInit")
        }
        defer { _ = final(self.handle) }
        var handles: [ObjectHandle] = []
        var batch = [CK_OBJECT_HANDLE](repeating: 0, count: 64)
        while true {
            var found: CK_ULONG = 0
            try check(batch.withUnsafeMutableBufferPointer { find(self.handle, $0.baseAddress, 64, &found) }, "C_FindObjects")
            if found == 0 { break }
            handles.append(contentsOf: batch.prefix(Int(found)).map { ObjectHandle(rawValue: UInt($0)) })
        }
        return handles
    }

    /// The value of one attribute (two-call convention: size, then value).
    ///
    /// - Throws: a `PKCS11Error` with `CKR_ATTRIBUTE_SENSITIVE` for secret values of sensitive keys.
    public func attribute(_ type: AttributeType, of object: ObjectHandle) throws(PKCS11Error) -> [UInt8] {
        let get = try self.module.function(\.C_GetAttributeValue, "C_GetAttributeValue")
        let object = CK_OBJECT_HANDLE(object.rawValue)
        var attribute = CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(type.rawValue), pValue: nil, ulValueLen: 0)
        try check(get(self.handle, object, &attribute, 1), "C_GetAttributeValue")
        if attribute.ulValueLen == CK_ULONG.max {
            throw PKCS11Error(.moduleError, function: "C_GetAttributeValue", rv: .attributeTypeInvalid, detail: "attribute unavailable")
        }
        var value = [UInt8](repeating: 0, count: Int(attribute.ulValueLen))
        let rv = value.withUnsafeMutableBytes { buffer in
            attribute.pValue = buffer.baseAddress
            return get(self.handle, object, &attribute, 1)
        }
        try check(rv, "C_GetAttributeValue")
        return Array(value.prefix(Int(attribute.ulValueLen)))
    }

    /// Destroys the object `object` in the token.
    public func destroy(_ object: ObjectHandle) throws(PKCS11Error) {
        let destroy = try self.module.function(\.C_DestroyObject, "C_DestroyObject")
        try check(destroy(self.handle, CK_OBJECT_HANDLE(object.rawValue)), "C_DestroyObject")
    }

    /// Generates a key pair in the token. The private key is sensitive, non-extractable and sign-only;
    /// both halves carry `CKA_ID = id` and `CKA_LABEL = label`.
    ///
    /// With `forWrapping` both halves are session objects (`CKA_TOKEN` false, gone with the session) and the private key
    /// is extractable, so that `wrapKey` can take it out under the KEK; it stays sensitive (never in clear).
    func generateKeyPair(id: [UInt8], label: String, algorithm: KeyAlgorithm, forWrapping: Bool = false) throws(PKCS11Error) -> (publicKey: ObjectHandle, privateKey: ObjectHandle) {
        let generate = try self.module.function(\.C_GenerateKeyPair, "C_GenerateKeyPair")
        var publicTemplate: [Attribute] = [
            .bool(.token, !forWrapping), .bool(.private, false), .bool(.verify, true),
            .bytes(.id, id), .bytes(.label, Array(label.utf8)),
        ]
        let privateTemplate: [Attribute] = [
            .bool(.token, !forWrapping), .bool(.private, true), .bool(.sensitive, true),
            .bool(.extractable, forWrapping), .bool(.sign, true), .bool(.decrypt, false),
            .bool(.unwrap, false), .bool(.derive, false),
            .bytes(.id, id), .bytes(.label, Array(label.utf8)),
        ]
        let mechanismType: CK_MECHANISM_TYPE
        if let curve = algorithm.curveOIDDER {
            mechanismType = CK_MECHANISM_TYPE(CKM_EC_KEY_PAIR_GEN)
            publicTemplate.append(.bytes(.ecParams, curve))
        } else {
            mechanismType = CK_MECHANISM_TYPE(CKM_RSA_PKCS_KEY_PAIR_GEN)
            publicTemplate.append(.ulong(.modulusBits, UInt(algorithm.bits)))
            publicTemplate.append(.bytes(.publicExponent, [0x01, 0x00, 0x01]))
        }
        var mechanism = CK_MECHANISM(mechanism: mechanismType, pParameter: nil, ulParameterLen: 0)
        var publicKey: CK_OBJECT_HANDLE = 0
        var privateKey: CK_OBJECT_HANDLE = 0
        try Attribute.withTemplate(publicTemplate) { publicPointer, publicCount throws(PKCS11Error) in
            try Attribute.withTemplate(privateTemplate) { privatePointer, privateCount throws(PKCS11Error) in
                try check(generate(self.handle, &mechanism, publicPointer, publicCount, privatePointer, privateCount, &publicKey, &privateKey), "C_GenerateKeyPair")
            }
        }
        return (ObjectHandle(rawValue: UInt(publicKey)), ObjectHandle(rawValue: UInt(privateKey)))
    }

    /// Generates a 256-bit generic secret key in the token for HMAC-SHA-256: sensitive, non-extractable, sign-only,
    /// with `CKA_ID = id` and `CKA_LABEL = label`.
    func generateHMACKey(id: [UInt8], label: String) throws(PKCS11Error) -> ObjectHandle {
        let generate = try self.module.function(\.C_GenerateKey, "C_GenerateKey")
        let template: [Attribute] = [
            .objectClass(.secretKey), .ulong(.keyType, UInt(CKK_GENERIC_SECRET)), .ulong(.valueLength, 32),
            .bool(.token, true), .bool(.private, true), .bool(.sensitive, true), .bool(.extractable, false),
            .bool(.sign, true), .bool(.verify, false), .bool(.encrypt, false), .bool(.decrypt, false),
            .bool(.wrap, false), .bool(.unwrap, false), .bool(.derive, false),
            .bytes(.id, id), .bytes(.label, Array(label.utf8)),
        ]
        var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_GENERIC_SECRET_KEY_GEN), pParameter: nil, ulParameterLen: 0)
        var key: CK_OBJECT_HANDLE = 0
        try Attribute.withTemplate(template) { pointer, count throws(PKCS11Error) in
            try check(generate(self.handle, &mechanism, pointer, count, &key), "C_GenerateKey")
        }
        return ObjectHandle(rawValue: UInt(key))
    }

    /// HMAC-SHA-256 of `data` with the secret key `key` (`CKM_SHA256_HMAC`).
    func hmacSHA256(key: ObjectHandle, data: [UInt8]) throws(PKCS11Error) -> [UInt8] {
        let signInit = try self.module.function(\.C_SignInit, "C_SignInit")
        let sign = try self.module.function(\.C_Sign, "C_Sign")
        var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_SHA256_HMAC), pParameter: nil, ulParameterLen: 0)
        try check(signInit(self.handle, &mechanism, CK_OBJECT_HANDLE(key.rawValue)), "C_SignInit")
        var output = [UInt8](repeating: 0, count: 32)
        var length = CK_ULONG(output.count)
        var input = data
        let rv = input.withUnsafeMutableBufferPointer { inputPointer in
            output.withUnsafeMutableBufferPointer { sign(self.handle, inputPointer.baseAddress, CK_ULONG(inputPointer.count), $0.baseAddress, &length) }
        }
        try check(rv, "C_Sign")
        return Array(output.prefix(Int(length)))
    }

    // MARK: Signing

    /// Signs one digest with `key` and writes the signature (DER for ECDSA) to `output`.
    ///
    /// `scratch` must hold at least the key's raw signature length; it is reused across calls so the hot
    /// path allocates only the returned signature.
    func sign(key: ObjectHandle, mechanism: SignatureMechanism, digest: UnsafeRawBufferPointer, scratch: inout [UInt8]) throws(PKCS11Error) -> [UInt8] {
        guard let signInit = self.signInitFunction, let sign = self.signFunction else {
            throw PKCS11Error(.functionNotSupported, function: "C_Sign", detail: "the module does not implement C_SignInit/C_Sign")
        }
        let hash = mechanism.hash
        guard digest.count == hash.digestLength else {
            throw PKCS11Error(.invalidDigestLength, detail: "a \(hash.rawValue) digest is \(hash.digestLength) bytes, got \(digest.count)")
        }
        var pss = CK_RSA_PKCS_PSS_PARAMS(hashAlg: hash.pkcs11Mechanism, mgf: hash.mgf1, sLen: CK_ULONG(hash.digestLength))
        var rv: CK_RV = withUnsafeMutablePointer(to: &pss) { pssPointer in
            var ck: CK_MECHANISM
            switch mechanism {
            case .ecdsa: ck = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_ECDSA), pParameter: nil, ulParameterLen: 0)
            case .rsaPKCS1v15: ck = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_RSA_PKCS), pParameter: nil, ulParameterLen: 0)
            case .rsaPSS:
                ck = CK_MECHANISM(
                    mechanism: CK_MECHANISM_TYPE(CKM_RSA_PKCS_PSS), pParameter: UnsafeMutableRawPointer(pssPointer),
                    ulParameterLen: CK_ULONG(MemoryLayout<CK_RSA_PKCS_PSS_PARAMS>.size))
            }
            return signInit(self.handle, &ck, CK_OBJECT_HANDLE(key.rawValue))
        }
        try check(rv, "C_SignInit")

        var length = CK_ULONG(scratch.count)
        rv = Self.withSignInput(mechanism: mechanism, digest: digest) { input in
            scratch.withUnsafeMutableBufferPointer { out in
                sign(self.handle, UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: UInt8.self)), CK_ULONG(input.count), out.baseAddress, &length)
            }
        }
        if rv == UInt(CKR_BUFFER_TOO_SMALL) {
            // The operation stays active after CKR_BUFFER_TOO_SMALL: grow and call again.
            scratch = [UInt8](repeating: 0, count: Int(length))
            rv = Self.withSignInput(mechanism: mechanism, digest: digest) { input in
                scratch.withUnsafeMutableBufferPointer { out in
                    sign(self.handle, UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: UInt8.self)), CK_ULONG(input.count), out.baseAddress, &length)
                }
            }
        }
        try check(rv, "C_Sign")
        return scratch.withUnsafeBytes { raw in
            let signature = UnsafeRawBufferPointer(rebasing: raw[0..<Int(length)])
            if case .ecdsa = mechanism { return DER.ecdsaSignature(raw: signature) }
            return Array(signature)
        }
    }

    /// The bytes handed to `C_Sign`: the digest, or `DigestInfo ‖ digest` for PKCS#1 v1.5.
    @inline(__always)
    private static func withSignInput<T>(mechanism: SignatureMechanism, digest: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        guard case .rsaPKCS1v15(let hash) = mechanism else { return body(digest) }
        let prefix = hash.digestInfoPrefix
        return withUnsafeTemporaryAllocation(byteCount: prefix.count + digest.count, alignment: 1) { buffer in
            prefix.withUnsafeBytes { buffer.copyMemory(from: $0) }
            UnsafeMutableRawBufferPointer(rebasing: buffer[prefix.count...]).copyMemory(from: digest)
            return body(UnsafeRawBufferPointer(buffer))
        }
    }
}
