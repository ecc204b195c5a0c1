import Synchronization

/// A pool thread's state: its session (re-opened after a loss) and a reusable signature buffer.
/// `@unchecked Sendable`: handed to its thread at start and used only there afterwards.
final class Worker: @unchecked Sendable {
    let index: Int
    unowned let token: Token
    /// The module instance this worker calls (the token's only one, or its own connection).
    let module: PKCS11Module
    /// The token's slot in `module`.
    var slot: SlotID
    /// Set when `module` lost its connection, until a session is open again (see `Token.reopenSession`).
    var reconnecting = false
    private var session: Session?
    var scratch = [UInt8](repeating: 0, count: 512)
    /// Holder keys unwrapped on this worker's session (see `Token+wrappedKeys`).
    var unwrapped: UnwrappedKeyCache
    /// The KEK and its binding key in `module`, found on first use (nil again after the session is lost).
    var wrappingKeys: WrappingKeys?
    /// Credentials revoked since this worker's last job: their unwrapped handles are destroyed before its next one.
    let evictions = Mutex<Set<String>>([])

    init(index: Int, token: Token, module: PKCS11Module, slot: SlotID, session: Session) {
        self.index = index
        self.token = token
        self.module = module
        self.slot = slot
        self.session = session
        self.unwrapped = UnwrappedKeyCache(capacity: token.configuration.unwrappedKeyCacheSize)
    }

    /// The worker's session, re-opened and logged in if it was lost (or died with an earlier initialisation of the module).
    func currentSession() throws(PKCS11Error) -> Session {
        if let session = self.session {
            if session.generation == self.module.generation { return session }
            self.session = nil
            self.token.invalidateKeyCache()
            self.forgetSessionObjects()
        }
        let session = try self.token.reopenSession(for: self)
        self.session = session
        return session
    }

    /// Closes the worker's session (at pool stop, or when the token no longer knows it).
    func closeSession() {
        self.session?.close()
        self.session = nil
        self.forgetSessionObjects()
    }

    /// Forgets the unwrapped keys and the KEK handles: they went with the session (session objects die with it).
    func forgetSessionObjects() {
        _ = self.unwrapped.removeAll()
        self.wrappingKeys = nil
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
        self.token.countSessionLoss()
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
