internal import CPKCS11
import Synchronization

/// The KEK and its binding key as one module instance numbers them, and the wrap mechanism the token offers.
struct WrappingKeys {
    let kek: ObjectHandle
    let binding: ObjectHandle
    let mechanism: UInt
}

/// How often the workers' unwrapped-key caches answered (for tests, metrics and the benchmark).
public struct UnwrapStatistics: Hashable, Sendable {
    /// Signing batches that found their key unwrapped in the worker's cache.
    public var hits: Int
    /// Keys unwrapped (cache misses).
    public var unwraps: Int
    /// Unwrapped keys destroyed to make room (least recently used).
    public var evictions: Int
    /// Wrapped keys refused (binding MAC wrong or the token refused the blob).
    public var refusals: Int

    public init(hits: Int, unwraps: Int, evictions: Int, refusals: Int) {
        self.hits = hits
        self.unwraps = unwraps
        self.evictions = evictions
        self.refusals = refusals
    }
}

/// Holder keys stored wrapped in the database (issue 13): generated as session objects, wrapped under the KEK and
/// destroyed; unwrapped on use into a session object on the worker's own session, kept in its bounded LRU.
extension Token {
    /// The id of the binding key that goes with the KEK `kekID`.
    public static func bindingKeyID(kekID: String) -> String { kekID + "-binding" }

    /// Creates the KEK (AES-256, sensitive, non-extractable, wrap/unwrap only) and its binding key (HMAC-SHA-256,
    /// sign-only, non-extractable) as token objects when the token has none; checks them when it has.
    ///
    /// - Returns: true when they were created now.
    /// - Throws: `invalidConfiguration` when a key with that id exists but does not have those attributes.
    @discardableResult
    public func createKEK(id: String? = nil) async throws -> Bool {
        let id = id ?? self.configuration.kekID
        return try await self.withSession { session throws(PKCS11Error) in
            let kekID = Array(id.utf8)
            let bindingID = Array(Self.bindingKeyID(kekID: id).utf8)
            let kek = try session.findObjects([.objectClass(.secretKey), .bytes(.id, kekID)])
            let binding = try session.findObjects([.objectClass(.secretKey), .bytes(.id, bindingID)])
            if kek.isEmpty && binding.isEmpty {
                try self.objectWrites.withLock { _ throws(PKCS11Error) in
                    _ = try session.generateKEK(id: kekID, label: id)
                    _ = try session.generateHMACKey(id: bindingID, label: Self.bindingKeyID(kekID: id))
                }
                return true
            }
            _ = try Self.checkedWrappingKeys(session: session, kekID: id, slot: self.slot)
            return false
        }
    }

    /// Whether the KEK is in the token with the attributes it must have (asked of the token).
    ///
    /// - Throws: `keyNotFound` when the KEK or its binding key is missing, `invalidConfiguration` when one is not as
    ///   strict as required, `functionNotSupported` when the token offers no mechanism to wrap keys.
    public func checkKEK() async throws {
        let id = self.configuration.kekID
        _ = try await self.onWorker(retry: true) { worker, session throws(PKCS11Error) in try Self.checkedWrappingKeys(session: session, kekID: id, slot: worker.slot) }
    }

    /// Whether the token can wrap and unwrap holder keys (`CKM_AES_KEY_WRAP_PAD` or `CKM_AES_CBC_PAD` for wrap and unwrap).
    public func supportsKeyWrapping() async throws -> Bool {
        try await self.onWorker(retry: true) { worker, session throws(PKCS11Error) in try session.wrapMechanismType(slot: worker.slot) != nil }
    }

    /// Generates a key pair for `credential` as session objects, wraps the private key under the KEK, binds the result
    /// to `credential` and destroys both session objects. Nothing is left in the token.
    ///
    /// - Returns: the wrapped private key with its public key.
    /// - Throws: `keyNotFound` when the token has no KEK, `functionNotSupported` when it offers no wrap mechanism.
    public func generateWrappedKeyPair(credential: String, algorithm: KeyAlgorithm) async throws -> WrappedKey {
        try await self.onWorker { worker, session throws(PKCS11Error) in
            let keys = try worker.wrappingKeys(session: session)
            let mechanism: WrapMechanism
            if keys.mechanism == UInt(CKM_AES_KEY_WRAP_PAD) {
                mechanism = .aesKeyWrapPad
            } else {
                var generator = SystemRandomNumberGenerator()
                mechanism = .aesCBCPad(iv: (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) })
            }
            let id = Array(credential.utf8)
            let pair = try session.generateKeyPair(id: id, label: credential, algorithm: algorithm, forWrapping: true)
            defer {
                try? session.destroy(pair.privateKey)
                try? session.destroy(pair.publicKey)
            }
            let publicKey = try Self.subjectPublicKeyInfo(session: session, publicKey: pair.publicKey, algorithm: algorithm)
            let blob = try session.wrapKey(pair.privateKey, kek: keys.kek, mechanism: mechanism)
            let data = WrappedKey.bindingData(credential: credential, algorithm: algorithm, mechanism: mechanism, publicKey: publicKey, blob: blob)
            let binding = try session.hmacSHA256(key: keys.binding, data: data)
            return WrappedKey(algorithm: algorithm, mechanism: mechanism, blob: blob, binding: binding, publicKey: publicKey)
        }
    }

    /// Checks in the token that `wrapped` belongs to `credential` and unwraps under this token's KEK, without keeping
    /// anything (the unwrapped session object is destroyed at once). For tools and tests.
    ///
    /// - Throws: `wrappedKeyInvalid` when the blob was altered, belongs to another credential or another token.
    public func verifyWrappedKey(_ wrapped: WrappedKey, credential: String) async throws {
        try await self.onWorker { worker, session throws(PKCS11Error) in
            let handle = try worker.unwrap(wrapped, credential: credential, session: session)
            try? session.destroy(handle)
        }
    }

    /// Drops `credential`'s unwrapped key on every worker of this process: each destroys the session object before its
    /// next job. Other processes (nodes) never use theirs again either: each use compares the binding read from the
    /// credential's row now, and a revoked credential's row has no wrapped key left.
    public func evictUnwrapped(credential: String) {
        for worker in self.poolWorkers { worker.evictions.withLock { _ = $0.insert(credential) } }
    }

    /// How often the unwrapped-key caches answered since the token was opened.
    public var unwrapStatistics: UnwrapStatistics {
        UnwrapStatistics(
            hits: self.unwrapCounters.hits.load(ordering: .relaxed), unwraps: self.unwrapCounters.unwraps.load(ordering: .relaxed),
            evictions: self.unwrapCounters.evictions.load(ordering: .relaxed), refusals: self.unwrapCounters.refusals.load(ordering: .relaxed))
    }

    /// The KEK and binding key in `session`'s module, their attributes checked, and the wrap mechanism to use.
    static func checkedWrappingKeys(session: Session, kekID: String, slot: SlotID) throws(PKCS11Error) -> WrappingKeys {
        let kekFound = try session.findObjects([.objectClass(.secretKey), .bytes(.id, Array(kekID.utf8))])
        let bindingID = Self.bindingKeyID(kekID: kekID)
        let bindingFound = try session.findObjects([.objectClass(.secretKey), .bytes(.id, Array(bindingID.utf8))])
        guard kekFound.count == 1, bindingFound.count == 1 else {
            if kekFound.isEmpty || bindingFound.isEmpty {
                throw PKCS11Error(.keyNotFound, detail: "the token has no key-encryption key '\(kekID)' (and binding key '\(bindingID)'): create it with `sigillo hsm create-kek`")
            }
            throw PKCS11Error(.invalidConfiguration, detail: "more than one key has the id '\(kekID)' or '\(bindingID)'")
        }
        let kek = kekFound[0]
        let binding = bindingFound[0]
        let kekFlags: [(AttributeType, Bool)] = [
            (.token, true), (.private, true), (.sensitive, true), (.extractable, false), (.wrap, true), (.unwrap, true),
            (.encrypt, false), (.decrypt, false), (.sign, false), (.derive, false),
        ]
        for (type, expected) in kekFlags where try session.flag(type, of: kek) != expected {
            throw PKCS11Error(.invalidConfiguration, detail: "the key-encryption key '\(kekID)' has attribute 0x\(String(type.rawValue, radix: 16)) \(!expected); it must be a sensitive, non-extractable, wrap/unwrap-only token key")
        }
        let keyType = try session.attribute(.keyType, of: kek).withUnsafeBytes { $0.loadUnaligned(as: CK_KEY_TYPE.self) }
        guard keyType == UInt(CKK_AES), try session.attribute(.valueLength, of: kek).withUnsafeBytes({ $0.loadUnaligned(as: CK_ULONG.self) }) == 32 else {
            throw PKCS11Error(.invalidConfiguration, detail: "the key-encryption key '\(kekID)' is not AES-256")
        }
        for (type, expected) in [(AttributeType.sensitive, true), (.extractable, false), (.sign, true), (.encrypt, false), (.decrypt, false), (.wrap, false), (.unwrap, false)]
        where try session.flag(type, of: binding) != expected {
            throw PKCS11Error(.invalidConfiguration, detail: "the binding key '\(bindingID)' must be a sensitive, non-extractable, sign-only token key")
        }
        guard let mechanism = try session.wrapMechanismType(slot: slot) else {
            throw PKCS11Error(.functionNotSupported, detail: "the token offers neither CKM_AES_KEY_WRAP_PAD nor CKM_AES_CBC_PAD to wrap and unwrap keys")
        }
        return WrappingKeys(kek: kek, binding: binding, mechanism: mechanism)
    }
}

extension Worker {
    /// The KEK and binding key for this worker's module, looked up (and checked) on first use after a (re)opened session.
    func wrappingKeys(session: Session) throws(PKCS11Error) -> WrappingKeys {
        if let keys = self.wrappingKeys { return keys }
        let keys = try Token.checkedWrappingKeys(session: session, kekID: self.token.configuration.kekID, slot: self.slot)
        self.wrappingKeys = keys
        return keys
    }

    /// Destroys the unwrapped keys of credentials revoked since this worker's last job (at the start of every job).
    func applyEvictions(session: Session) {
        let revoked = self.evictions.withLock { pending -> Set<String> in
            guard !pending.isEmpty else { return [] }
            defer { pending.removeAll() }
            return pending
        }
        for credential in revoked {
            if let handle = self.unwrapped.remove(credential) { try? session.destroy(handle) }
        }
    }

    /// The unwrapped private key of `credential`: from this worker's cache when it holds the same wrapped key (a hit:
    /// no token call), else checked and unwrapped into a session object and cached, evicting the least recently used.
    func unwrappedKey(_ wrapped: WrappedKey, credential: String, session: Session) throws(PKCS11Error) -> ObjectHandle {
        let found = self.unwrapped.lookup(credential, wrapped: wrapped)
        if let stale = found.stale { try? session.destroy(stale) }
        if let handle = found.handle {
            self.token.unwrapCounters.hits.add(1, ordering: .relaxed)
            return handle
        }
        let handle = try self.unwrap(wrapped, credential: credential, session: session)
        if let evicted = self.unwrapped.insert(credential, handle: handle, wrapped: wrapped) {
            try? session.destroy(evicted)
            self.token.unwrapCounters.evictions.add(1, ordering: .relaxed)
        }
        return handle
    }

    /// Checks `wrapped`'s binding in the token, then unwraps it into a session object (not cached).
    ///
    /// - Throws: `wrappedKeyInvalid` when the binding does not match (altered, moved to another credential, another
    ///   token) or the token refuses the blob.
    func unwrap(_ wrapped: WrappedKey, credential: String, session: Session) throws(PKCS11Error) -> ObjectHandle {
        let keys = try self.wrappingKeys(session: session)
        let data = WrappedKey.bindingData(
            credential: credential, algorithm: wrapped.algorithm, mechanism: wrapped.mechanism, publicKey: wrapped.publicKey, blob: wrapped.blob)
        let expected = try session.hmacSHA256(key: keys.binding, data: data)
        guard constantTimeEqual(expected, wrapped.binding) else {
            self.token.unwrapCounters.refusals.add(1, ordering: .relaxed)
            throw PKCS11Error(.wrappedKeyInvalid, detail: "the wrapped key of '\(credential)' does not belong to it (altered, moved from another credential, or from another token)")
        }
        do {
            let handle = try session.unwrapPrivateKey(wrapped.blob, kek: keys.kek, mechanism: wrapped.mechanism, algorithm: wrapped.algorithm, id: Array(credential.utf8))
            self.token.unwrapCounters.unwraps.add(1, ordering: .relaxed)
            return handle
        } catch where error.code == .moduleError || error.code == .mechanismMismatch {
            self.token.unwrapCounters.refusals.add(1, ordering: .relaxed)
            throw PKCS11Error(.wrappedKeyInvalid, function: error.function, rv: error.rv, detail: "the token refused the wrapped key of '\(credential)'")
        }
    }
}

/// The counters behind `Token.unwrapStatistics`.
final class UnwrapCounters: Sendable {
    let hits = Atomic<Int>(0)
    let unwraps = Atomic<Int>(0)
    let evictions = Atomic<Int>(0)
    let refusals = Atomic<Int>(0)
}
