internal import CPKCS11
import Foundation
import Synchronization

/// A key pair's private half as the hot path needs it: its handle and algorithm.
public struct KeyEntry: Hashable, Sendable {
    /// The private key's handle in the token.
    public let handle: ObjectHandle
    /// The key's algorithm and size.
    public let algorithm: KeyAlgorithm
}

/// A token opened for use: a fixed pool of logged-in sessions, each owned by one worker thread, and a
/// credential id → object handle cache so the signing path never searches the token.
///
/// Every blocking PKCS#11 call runs on the pool's threads; the async methods here suspend the caller
/// without blocking it. When the token goes away (device removed, sessions closed), operations fail with
/// `tokenUnavailable` and each worker re-opens its session and logs in again on its next job.
///
/// `@unchecked Sendable`: the mutable state is in `Mutex`es; the module functions are thread-safe
/// (initialised with `CKF_OS_LOCKING_OK`); sessions are confined to their worker threads.
public final class Token: @unchecked Sendable {
    /// How the token was opened.
    public let configuration: TokenConfiguration
    /// The loaded module the token is reached through.
    public let module: PKCS11Module
    private let currentSlot: Mutex<SlotID>
    private let pin: SecretBytes
    private let pool = WorkerPool()
    private let keys = Mutex<[String: KeyEntry]>([:])
    /// Held while token objects are created or destroyed: SoftHSM's file store fails now and then when two
    /// sessions write objects at once (seen under load). Signing never takes it.
    let objectWrites = Mutex<Void>(())
    private let closed = Atomic<Bool>(false)

    /// The slot the token is in now (it may change if the token is removed and comes back).
    public var slot: SlotID { self.currentSlot.withLock { $0 } }

    /// Number of sessions, and of worker threads.
    public var sessionCount: Int { self.pool.count }

    private init(configuration: TokenConfiguration, module: PKCS11Module, slot: SlotID, pin: SecretBytes) {
        self.configuration = configuration
        self.module = module
        self.currentSlot = Mutex(slot)
        self.pin = pin
    }

    /// Loads the module, finds the token by label, opens `configuration.sessions` sessions, logs in once and
    /// starts one worker thread per session. Blocking: call at start-up.
    ///
    /// - Throws: `moduleLoadFailed`, `tokenNotFound`, `pinUnavailable`, `pinIncorrect`, `pinLocked`.
    public static func open(_ configuration: TokenConfiguration) throws(PKCS11Error) -> Token {
        guard configuration.sessions >= 1, configuration.sessions <= 256 else {
            throw PKCS11Error(.invalidConfiguration, detail: "session count must be 1...256, got \(configuration.sessions)")
        }
        let module = try PKCS11Module.load(path: configuration.modulePath)
        let slot = try module.slot(forTokenLabel: configuration.tokenLabel)
        let pin = try configuration.pin.read()
        let token = Token(configuration: configuration, module: module, slot: slot, pin: pin)
        var workers: [Worker] = []
        for index in 0..<configuration.sessions {
            let session = try Session(module: module, slot: slot)
            if index == 0 { try session.login(pin: pin) }
            workers.append(Worker(index: index, token: token, session: session))
        }
        token.pool.start(workers: workers, name: "sigillo-hsm")
        return token
    }

    /// Stops the worker threads after queued jobs and closes the sessions. Idempotent.
    public func close() {
        guard !self.closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        self.pool.stop()
    }

    /// Opens a new session and logs in (a worker's recovery after the token went away).
    func reopenSession() throws(PKCS11Error) -> Session {
        var slot = self.slot
        do {
            let session = try Session(module: self.module, slot: slot)
            try session.login(pin: self.pin)
            return session
        } catch {
            // The token may be back in another slot.
            do {
                slot = try self.module.slot(forTokenLabel: self.configuration.tokenLabel)
            } catch {
                throw PKCS11Error(.tokenUnavailable, function: error.function, rv: error.rv, detail: "token '\(self.configuration.tokenLabel)' is not available: \(error.detail)")
            }
            self.currentSlot.withLock { $0 = slot }
            self.invalidateKeyCache()
            let session = try Session(module: self.module, slot: slot)
            try session.login(pin: self.pin)
            return session
        }
    }

    // MARK: Running work on the pool

    /// Runs `body` with a session on one of the pool's threads and returns its result.
    ///
    /// The body must not block for long: it holds a session. A lost session is re-opened once and `body`
    /// retried when `retry` is true (use it only for operations without side effects).
    public func withSession<T: Sendable>(retry: Bool = false, _ body: @escaping @Sendable (Session) throws(PKCS11Error) -> T) async throws -> T {
        try self.ensureOpen()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            self.pool.submit { worker in
                do {
                    continuation.resume(returning: try worker.withSession(retry: retry, body))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    func submit(_ job: @escaping WorkerPool.Job, count: Int) {
        self.pool.submit(job, count: count)
    }

    func ensureOpen() throws(PKCS11Error) {
        if self.closed.load(ordering: .acquiring) {
            throw PKCS11Error(.tokenUnavailable, detail: "the token pool is closed")
        }
    }

    /// Checks the token answers (`C_GetSessionInfo` on a pool session, re-opening it if it was lost).
    public func ping() async throws {
        try await self.withSession(retry: true) { session throws(PKCS11Error) in try session.info() }
    }

    // MARK: Keys

    /// Generates a key pair for `id` in the token and returns its public key (SubjectPublicKeyInfo, DER).
    ///
    /// - Throws: `keyAlreadyExists` if a private key with this `CKA_ID` is present.
    public func generateKeyPair(id: String, algorithm: KeyAlgorithm, label: String? = nil) async throws -> [UInt8] {
        try await self.withSession { session throws(PKCS11Error) in
            let idBytes = Array(id.utf8)
            guard try session.findObjects([.objectClass(.privateKey), .bytes(.id, idBytes)]).isEmpty else {
                throw PKCS11Error(.keyAlreadyExists, detail: "a key with id '\(id)' is already in the token")
            }
            let pair = try self.objectWrites.withLock { _ throws(PKCS11Error) in
                try session.generateKeyPair(id: idBytes, label: label ?? id, algorithm: algorithm)
            }
            self.keys.withLock { $0[id] = KeyEntry(handle: pair.privateKey, algorithm: algorithm) }
            return try Self.subjectPublicKeyInfo(session: session, publicKey: pair.publicKey, algorithm: algorithm)
        }
    }

    /// The public key for `id` (SubjectPublicKeyInfo, DER).
    public func publicKey(id: String) async throws -> [UInt8] {
        try await self.withSession(retry: true) { session throws(PKCS11Error) in
            let entry = try self.resolve(id, session: session)
            guard let handle = try session.findObjects([.objectClass(.publicKey), .bytes(.id, Array(id.utf8))]).first else {
                throw PKCS11Error(.keyNotFound, detail: "no public key with id '\(id)' in the token")
            }
            return try Self.subjectPublicKeyInfo(session: session, publicKey: handle, algorithm: entry.algorithm)
        }
    }

    /// The algorithm of the key `id`.
    public func keyAlgorithm(id: String) async throws -> KeyAlgorithm {
        try await self.withSession(retry: true) { session throws(PKCS11Error) in try self.resolve(id, session: session).algorithm }
    }

    /// Whether a private key with this id is in the token.
    public func containsKey(id: String) async throws -> Bool {
        do {
            _ = try await self.keyAlgorithm(id: id)
            return true
        } catch let error as PKCS11Error where error.code == .keyNotFound {
            return false
        }
    }

    /// Destroys every object (private key, public key, certificate) with `CKA_ID = id` and forgets its handle.
    ///
    /// - Returns: how many objects were destroyed (0 when none existed).
    @discardableResult
    public func destroyKeyPair(id: String) async throws -> Int {
        try await self.withSession { session throws(PKCS11Error) in
            self.keys.withLock { _ = $0.removeValue(forKey: id) }
            let objects = try session.findObjects([.bytes(.id, Array(id.utf8))])
            try self.objectWrites.withLock { _ throws(PKCS11Error) in
                for object in objects { try session.destroy(object) }
            }
            return objects.count
        }
    }

    /// Generates a 256-bit HMAC-SHA-256 secret key for `id` in the token (sensitive, non-extractable, sign-only).
    ///
    /// - Throws: `keyAlreadyExists` if a secret key with this `CKA_ID` is present.
    public func generateHMACKey(id: String) async throws {
        try await self.withSession { session throws(PKCS11Error) in
            let idBytes = Array(id.utf8)
            guard try session.findObjects([.objectClass(.secretKey), .bytes(.id, idBytes)]).isEmpty else {
                throw PKCS11Error(.keyAlreadyExists, detail: "a secret key with id '\(id)' is already in the token")
            }
            _ = try self.objectWrites.withLock { _ throws(PKCS11Error) in try session.generateHMACKey(id: idBytes, label: id) }
        }
    }

    /// HMAC-SHA-256 of `data` with the token's secret key `id`, computed in the token.
    ///
    /// - Throws: `keyNotFound` when no secret key has this id.
    public func hmacSHA256(keyID id: String, data: [UInt8]) async throws -> [UInt8] {
        try await self.withSession(retry: true) { session throws(PKCS11Error) in
            let found = try session.findObjects([.objectClass(.secretKey), .bytes(.id, Array(id.utf8))])
            guard let key = found.first else { throw PKCS11Error(.keyNotFound, detail: "no secret key with id '\(id)' in the token") }
            return try session.hmacSHA256(key: key, data: data)
        }
    }

    /// The cached entry for `id`, looking it up in the token on a miss (not on the hot path).
    func resolve(_ id: String, session: Session) throws(PKCS11Error) -> KeyEntry {
        if let entry = self.keys.withLock({ $0[id] }) { return entry }
        let found = try session.findObjects([.objectClass(.privateKey), .bytes(.id, Array(id.utf8))])
        guard let handle = found.first else {
            throw PKCS11Error(.keyNotFound, detail: "no key with id '\(id)' in the token")
        }
        guard found.count == 1 else {
            throw PKCS11Error(.moduleError, detail: "\(found.count) private keys share the id '\(id)'")
        }
        let keyTypeBytes = try session.attribute(.keyType, of: handle)
        let keyType = keyTypeBytes.withUnsafeBytes { $0.loadUnaligned(as: CK_KEY_TYPE.self) }
        var algorithm: KeyAlgorithm?
        if keyType == UInt(CKK_EC) {
            algorithm = KeyAlgorithm.identify(keyType: keyType, ecParams: try session.attribute(.ecParams, of: handle), modulusBits: nil)
        } else if keyType == UInt(CKK_RSA) {
            let modulus = try session.attribute(.modulus, of: handle)
            algorithm = KeyAlgorithm.identify(keyType: keyType, ecParams: nil, modulusBits: modulus.drop(while: { $0 == 0 }).count * 8)
        }
        guard let algorithm else {
            throw PKCS11Error(.mechanismMismatch, detail: "the key '\(id)' has an unsupported type or size")
        }
        let entry = KeyEntry(handle: handle, algorithm: algorithm)
        self.keys.withLock { $0[id] = entry }
        return entry
    }

    /// The cached handle for `id` (for the raw benchmark loop), resolving it if needed.
    public func keyEntry(id: String) async throws -> KeyEntry {
        try await self.withSession(retry: true) { session throws(PKCS11Error) in try self.resolve(id, session: session) }
    }

    func forgetKey(_ id: String) {
        self.keys.withLock { _ = $0.removeValue(forKey: id) }
    }

    func invalidateKeyCache() {
        self.keys.withLock { $0.removeAll() }
    }

    /// Number of handles in the cache (for tests and metrics).
    public var cachedKeyCount: Int { self.keys.withLock { $0.count } }

    private static func subjectPublicKeyInfo(session: Session, publicKey: ObjectHandle, algorithm: KeyAlgorithm) throws(PKCS11Error) -> [UInt8] {
        if let curve = algorithm.curveOIDDER {
            let point = try session.attribute(.ecPoint, of: publicKey)
            // The standard says DER OCTET STRING; some modules return the bare point.
            return DER.ecSubjectPublicKeyInfo(curveOID: curve, point: DER.octetStringContent(point) ?? point)
        }
        let modulus = try session.attribute(.modulus, of: publicKey)
        let exponent = try session.attribute(.publicExponent, of: publicKey)
        return DER.rsaSubjectPublicKeyInfo(modulus: modulus, exponent: exponent)
    }
}

/// A pool thread's state: its session (re-opened after a loss) and a reusable signature buffer.
/// `@unchecked Sendable`: handed to its thread at start and used only there afterwards.
final class Worker: @unchecked Sendable {
    let index: Int
    unowned let token: Token
    private var session: Session?
    var scratch = [UInt8](repeating: 0, count: 512)

    init(index: Int, token: Token, session: Session) {
        self.index = index
        self.token = token
        self.session = session
    }

    /// The worker's session, re-opened and logged in if it was lost.
    func currentSession() throws(PKCS11Error) -> Session {
        if let session = self.session { return session }
        let session = try self.token.reopenSession()
        self.session = session
        return session
    }

    /// Closes the worker's session (at pool stop, or when the token no longer knows it).
    func closeSession() {
        self.session?.close()
        self.session = nil
    }

    /// The one recovery path after a failed token call, used by `withSession` and by the signing batches.
    ///
    /// When `error` says the session or the token went away (`tokenUnavailable`: `CKR_SESSION_HANDLE_INVALID`,
    /// `CKR_DEVICE_REMOVED`, ...) the session is dropped, so the next `currentSession()` re-opens one and logs in
    /// again (`Token.reopenSession`, which also finds the token in another slot), and every cached key handle is
    /// forgotten, since a token that comes back may number its objects differently.
    ///
    /// - Returns: true when the worker recovered (the caller may retry once); false for any other error,
    ///   which leaves the session and the cache as they are.
    func recover(from error: PKCS11Error) -> Bool {
        guard error.code == .tokenUnavailable else { return false }
        self.closeSession()
        self.token.invalidateKeyCache()
        return true
    }

    /// Runs `body` with the worker's session; after a token loss, re-opens it and runs `body` once more if `retry`.
    func withSession<T>(retry: Bool, _ body: (Session) throws(PKCS11Error) -> T) throws(PKCS11Error) -> T {
        var attempt = 0
        while true {
            let session = try self.currentSession()
            do {
                return try body(session)
            } catch {
                guard self.recover(from: error) else { throw error }
                attempt += 1
                if !retry || attempt > 1 { throw error }
            }
        }
    }
}
