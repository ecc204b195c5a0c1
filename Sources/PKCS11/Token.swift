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
/// without blocking it. When the token goes away (device removed, sessions closed, the connection to a network
/// token lost), operations fail with `tokenUnavailable` and each worker re-opens its session and logs in again on
/// its next job, re-initialising its module first when the module's connection broke.
///
/// A module that reaches its token over a connection (p11-kit's `p11-kit-client.so`; `TokenConfiguration
/// .connectionPerSession`) is loaded once per session: each worker has its own connection, its own login and its own
/// object handles. p11-kit's client lets threads share a connection, but when the connection dies under them a
/// thread waiting for its reply behind another's can wait forever (p11-kit 0.24.1 `rpc_socket_read` does not wake
/// it); one connection per worker has no such waiters, and its `p11-kit-remote` works in parallel with the others.
///
/// The handle cache holds no truth of its own: other processes (other nodes on one network token) create and
/// destroy keys. A miss is looked up in the token; a handle the token no longer knows is dropped and looked up
/// again; everything but the signing path (`containsKey`, `publicKey`, `keyAlgorithm`) asks the token each time.
///
/// `@unchecked Sendable`: the mutable state is in `Mutex`es; the module functions are thread-safe
/// (initialised with `CKF_OS_LOCKING_OK`); sessions are confined to their worker threads.
public final class Token: @unchecked Sendable {
    /// How the token was opened.
    public let configuration: TokenConfiguration
    /// The loaded module the token is reached through (the first worker's, with a connection per session).
    public let module: PKCS11Module
    /// Every module instance the workers use: `module` alone, or one per session.
    let modules: [PKCS11Module]
    /// Whether `modules` were loaded for this token alone (finalised at `close`).
    private let ownsModules: Bool
    private let currentSlot: Mutex<SlotID>
    let pin: SecretBytes
    private let pool = WorkerPool()
    private let keys = Mutex<[ObjectIdentifier: KeyCache]>([:])
    /// Held while token objects are created or destroyed: SoftHSM's file store fails now and then when two
    /// sessions write objects at once (seen under load). Signing never takes it.
    let objectWrites = Mutex<Void>(())
    /// Held while a worker with a connection of its own reconnects and logs in again (see `reopenSession`).
    private let logins = Mutex<Void>(())
    private let closed = Atomic<Bool>(false)
    /// Hits, unwraps, evictions and refusals of the workers' unwrapped-key caches.
    let unwrapCounters = UnwrapCounters()
    private let sessionCounters = SessionCounters()

    /// Since the pool started: token calls that failed because the session or the token went away; sessions opened
    /// again after such a loss; attempts to open one that failed (the token still unreachable).
    public var sessionHealth: (losses: Int, reconnects: Int, failedReconnects: Int) {
        (self.sessionCounters.losses.load(ordering: .relaxed), self.sessionCounters.reconnects.load(ordering: .relaxed),
         self.sessionCounters.failedReconnects.load(ordering: .relaxed))
    }

    /// The slot the token is in now (it may change if the token is removed and comes back).
    public var slot: SlotID { self.currentSlot.withLock { $0 } }

    /// Number of sessions, and of worker threads.
    public var sessionCount: Int { self.pool.count }

    /// Operations waiting for a free session (the HSM workers' queue depth; those running are not counted).
    public var queuedOperations: Int { self.pool.queued }

    private init(configuration: TokenConfiguration, modules: [PKCS11Module], ownsModules: Bool, slot: SlotID, pin: SecretBytes) {
        self.configuration = configuration
        self.module = modules[0]
        self.modules = modules
        self.ownsModules = ownsModules
        self.currentSlot = Mutex(slot)
        self.pin = pin
    }

    /// Loads the module (once, or once per session: `TokenConfiguration.connectionPerSession`), finds the token by
    /// label, opens `configuration.sessions` sessions, logs in (once per module instance) and starts one worker
    /// thread per session. Blocking: call at start-up.
    ///
    /// - Throws: `moduleLoadFailed`, `tokenNotFound`, `pinUnavailable`, `pinIncorrect`, `pinLocked`.
    public static func open(_ configuration: TokenConfiguration) throws(PKCS11Error) -> Token {
        guard configuration.sessions >= 1, configuration.sessions <= 256 else {
            throw PKCS11Error(.invalidConfiguration, detail: "session count must be 1...256, got \(configuration.sessions)")
        }
        let perSession = configuration.usesConnectionPerSession
        var modules: [PKCS11Module] = []
        do {
            if perSession {
                for _ in 0..<configuration.sessions { modules.append(try PKCS11Module.loadInstance(path: configuration.modulePath)) }
            } else {
                modules = [try PKCS11Module.load(path: configuration.modulePath)]
            }
            let slot = try modules[0].slot(forTokenLabel: configuration.tokenLabel)
            let pin = try configuration.pin.read()
            let token = Token(configuration: configuration, modules: modules, ownsModules: perSession, slot: slot, pin: pin)
            var workers: [Worker] = []
            for index in 0..<configuration.sessions {
                let module = modules[index % modules.count]
                let moduleSlot = index < modules.count && index > 0 ? try module.slot(forTokenLabel: configuration.tokenLabel) : slot
                let session = try Session(module: module, slot: moduleSlot)
                // Login state is per module instance (per connection): once each.
                if index < modules.count { try session.login(pin: pin) }
                workers.append(Worker(index: index, token: token, module: module, slot: moduleSlot, session: session))
            }
            token.pool.start(workers: workers, name: "sigillo-hsm")
            return token
        } catch {
            if perSession { modules.forEach { $0.unload() } }
            throw error
        }
    }

    /// Stops the worker threads after queued jobs and closes the sessions (and the module instances loaded for this
    /// token alone). Idempotent.
    public func close() {
        guard !self.closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        self.pool.stop()
        if self.ownsModules { self.modules.forEach { $0.unload() } }
    }

    /// Opens a new session for `worker` and logs in (its recovery after the token went away).
    ///
    /// The session is opened in the worker's slot; failing that, in the slot the token is in now (it may come back in
    /// another one). When the module itself lost its token (`CKR_DEVICE_REMOVED` on a new session: p11-kit's RPC
    /// client after its server went away, until the module is initialised again), the module is re-initialised
    /// (`PKCS11Module.reinitialize`, which reconnects; once for all workers that saw the same initialisation fail),
    /// the slot found again and the module's handles forgotten. Until a session is open again, every failed attempt
    /// re-initialises (a client module initialised while its server was away has no slots). Runs on the worker,
    /// inside `PKCS11Module.withCalls`.
    ///
    /// - Throws: `tokenUnavailable` while the token cannot be reached; a login error if the PIN is refused.
    func reopenSession(for worker: Worker) throws(PKCS11Error) -> Session {
        do {
            let session = try self.reopenSessionOnce(for: worker)
            self.sessionCounters.reconnects.add(1, ordering: .relaxed)
            return session
        } catch {
            self.sessionCounters.failedReconnects.add(1, ordering: .relaxed)
            throw error
        }
    }

    /// A token call found the session or the token gone (`Worker.recover`).
    func countSessionLoss() {
        self.sessionCounters.losses.add(1, ordering: .relaxed)
    }

    private func reopenSessionOnce(for worker: Worker) throws(PKCS11Error) -> Session {
        guard self.ownsModules else { return try self.reconnect(worker) }
        // A connection of its own: re-initialising starts another p11-kit-remote whose SoftHSM reads the token's files,
        // and a login writes them (SoftHSM stores the token flags at each login); another instance reading meanwhile can
        // see no token. One worker at a time reconnects (the module is this worker's alone: no deadlock with `withCalls`).
        return try self.logins.withLock { _ throws(PKCS11Error) in try self.reconnect(worker) }
    }

    private func reconnect(_ worker: Worker) throws(PKCS11Error) -> Session {
        let module = worker.module
        let seen = module.generation
        do {
            let session = try self.openSession(module: module, slot: worker.slot)
            worker.reconnecting = false
            return session
        } catch where !Self.isConnectionLoss(error) && !worker.reconnecting {
            // The token may be back in another slot.
            worker.slot = try self.findSlot(module: module)
            return try self.openSession(module: module, slot: worker.slot)
        } catch {
            worker.reconnecting = true
        }
        try module.reinitialize(seen: seen)
        self.invalidateKeyCache()
        worker.slot = try self.findSlot(module: module)
        let session = try self.openSession(module: module, slot: worker.slot)
        worker.reconnecting = false
        return session
    }

    /// A new logged-in session. With a connection per session each login goes to another SoftHSM instance behind
    /// `p11-kit server`, and SoftHSM answers `CKR_GENERAL_ERROR` now and then when two of its instances use one token's
    /// files at once (seen when four workers reconnected together; `reopenSession` serialises this process's, not other
    /// nodes'). Any failure but a refused PIN is `tokenUnavailable`: the worker stays without a session and its next
    /// job tries again.
    private func openSession(module: PKCS11Module, slot: SlotID) throws(PKCS11Error) -> Session {
        let session = try Session(module: module, slot: slot)
        do {
            try session.login(pin: self.pin)
        } catch where error.code == .moduleError {
            throw PKCS11Error(.tokenUnavailable, function: error.function, rv: error.rv, detail: "the token refused a new login: \(error.detail)")
        }
        return session
    }

    /// The token's slot in `module` now (remembered; the key cache is emptied if it moved).
    private func findSlot(module: PKCS11Module) throws(PKCS11Error) -> SlotID {
        let slot: SlotID
        do {
            slot = try module.slot(forTokenLabel: self.configuration.tokenLabel)
        } catch {
            throw PKCS11Error(.tokenUnavailable, function: error.function, rv: error.rv, detail: "token '\(self.configuration.tokenLabel)' is not available: \(error.detail)")
        }
        let moved = self.currentSlot.withLock { current in
            defer { current = slot }
            return current != slot
        }
        if moved { self.invalidateKeyCache() }
        return slot
    }

    /// Return values after which only a new initialisation of the module helps: the module, not one session, lost the token.
    private static func isConnectionLoss(_ error: PKCS11Error) -> Bool {
        error.rv == .deviceRemoved || error.rv == .deviceError || error.rv == .cryptokiNotInitialized
    }

    // MARK: Running work on the pool

    /// Runs `body` with a session on one of the pool's threads and returns its result.
    ///
    /// The body must not block for long: it holds a session. A lost session is re-opened once and `body`
    /// retried when `retry` is true (use it only for operations without side effects).
    public func withSession<T: Sendable>(retry: Bool = false, _ body: @escaping @Sendable (Session) throws(PKCS11Error) -> T) async throws -> T {
        try await self.onWorker(retry: retry) { _, session throws(PKCS11Error) in try body(session) }
    }

    /// `withSession` with the worker that runs `body` (its unwrapped-key cache and KEK handles).
    func onWorker<T: Sendable>(retry: Bool = false, _ body: @escaping @Sendable (Worker, Session) throws(PKCS11Error) -> T) async throws -> T {
        try self.ensureOpen()
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            self.pool.submit { worker in
                do {
                    continuation.resume(returning: try worker.withSession(retry: retry) { session throws(PKCS11Error) in
                        worker.applyEvictions(session: session)
                        return try body(worker, session)
                    })
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Every worker of the pool.
    var poolWorkers: [Worker] { self.pool.workers }

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
            self.remember(id, KeyEntry(handle: pair.privateKey, algorithm: algorithm), in: session.module)
            return try Self.subjectPublicKeyInfo(session: session, publicKey: pair.publicKey, algorithm: algorithm)
        }
    }

    /// The public key for `id` (SubjectPublicKeyInfo, DER), as the token has it now.
    public func publicKey(id: String) async throws -> [UInt8] {
        try await self.withSession(retry: true) { session throws(PKCS11Error) in
            let entry = try self.resolve(id, session: session, refresh: true)
            guard let handle = try session.findObjects([.objectClass(.publicKey), .bytes(.id, Array(id.utf8))]).first else {
                throw PKCS11Error(.keyNotFound, detail: "no public key with id '\(id)' in the token")
            }
            return try Self.subjectPublicKeyInfo(session: session, publicKey: handle, algorithm: entry.algorithm)
        }
    }

    /// The algorithm of the key `id`, as the token has it now.
    public func keyAlgorithm(id: String) async throws -> KeyAlgorithm {
        try await self.withSession(retry: true) { session throws(PKCS11Error) in try self.resolve(id, session: session, refresh: true).algorithm }
    }

    /// Whether a private key with this id is in the token now (asked of the token, never answered from the cache).
    public func containsKey(id: String) async throws -> Bool {
        do {
            _ = try await self.keyAlgorithm(id: id)
            return true
        } catch let error as PKCS11Error where error.code == .keyNotFound {
            return false
        }
    }

    /// Destroys every token object (private key, public key, certificate) with `CKA_ID = id` and forgets its handle.
    ///
    /// - Returns: how many objects were destroyed (0 when none existed).
    @discardableResult
    public func destroyKeyPair(id: String) async throws -> Int {
        try await self.withSession { session throws(PKCS11Error) in
            self.forgetKey(id)
            // Token objects only: a holder key unwrapped into a worker's session (same id) is that worker's to destroy
            // (`evictUnwrapped`), or its cached handle could come to name another object.
            let objects = try session.findObjects([.bytes(.id, Array(id.utf8)), .bool(.token, true)])
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

    /// The cached entry for `id`, looking it up in the token on a miss (not on the hot path) or when `refresh` is set.
    ///
    /// - Throws: `keyNotFound` (and the id is forgotten) when the token has no private key with this id.
    func resolve(_ id: String, session: Session, refresh: Bool = false) throws(PKCS11Error) -> KeyEntry {
        if !refresh, let entry = self.cached(id, in: session.module) { return entry }
        let found = try session.findObjects([.objectClass(.privateKey), .bytes(.id, Array(id.utf8))])
        guard let handle = found.first else {
            self.forgetKey(id)
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
        self.remember(id, entry, in: session.module)
        return entry
    }

    /// The cached handle for `id` (for the raw benchmark loop), resolving it if needed.
    public func keyEntry(id: String) async throws -> KeyEntry {
        try await self.withSession(retry: true) { session throws(PKCS11Error) in try self.resolve(id, session: session) }
    }

    /// Handles by credential id in one module instance, valid for one initialisation of it: after
    /// `PKCS11Module.reinitialize` the token numbers its objects afresh, so entries of an earlier generation are misses.
    private struct KeyCache {
        var generation: UInt64 = 0
        var entries: [String: KeyEntry] = [:]
    }

    private func cached(_ id: String, in module: PKCS11Module) -> KeyEntry? {
        let generation = module.generation
        return self.keys.withLock { caches in
            guard let cache = caches[ObjectIdentifier(module)], cache.generation == generation else { return nil }
            return cache.entries[id]
        }
    }

    private func remember(_ id: String, _ entry: KeyEntry, in module: PKCS11Module) {
        let generation = module.generation
        self.keys.withLock { caches in
            var cache = caches[ObjectIdentifier(module)] ?? KeyCache(generation: generation)
            if cache.generation != generation { cache = KeyCache(generation: generation) }
            cache.entries[id] = entry
            caches[ObjectIdentifier(module)] = cache
        }
    }

    func forgetKey(_ id: String) {
        self.keys.withLock { caches in
            for key in caches.keys { caches[key]?.entries[id] = nil }
        }
    }

    func invalidateKeyCache() {
        self.keys.withLock { $0.removeAll() }
    }

    /// Number of credential ids with a cached handle (in any module instance), for tests and metrics.
    public var cachedKeyCount: Int {
        let generations = Dictionary(uniqueKeysWithValues: self.modules.map { (ObjectIdentifier($0), $0.generation) })
        return self.keys.withLock { caches in
            Set(caches.filter { generations[$0.key] == $0.value.generation }.flatMap { $0.value.entries.keys }).count
        }
    }

    static func subjectPublicKeyInfo(session: Session, publicKey: ObjectHandle, algorithm: KeyAlgorithm) throws(PKCS11Error) -> [UInt8] {
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

/// What `Token.sessionHealth` reports.
final class SessionCounters: Sendable {
    let losses = Atomic<Int>(0)
    let reconnects = Atomic<Int>(0)
    let failedReconnects = Atomic<Int>(0)
}
