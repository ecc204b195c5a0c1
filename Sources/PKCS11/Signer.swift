import Synchronization

/// The hash-and-sign hot path: signs batches of digests in parallel on the token's session pool.
///
/// A batch is fanned out to `min(sessions, digests)` workers that claim digests one at a time from a shared
/// atomic index, so a slow signature never holds the others back; results come back in input order.
/// The caller suspends on a continuation: no thread of the cooperative pool or an event loop waits.
public struct Signer: Sendable {
    public let token: Token

    public init(token: Token) {
        self.token = token
    }

    /// Signs each digest with the private key of `credential`.
    ///
    /// - Parameters:
    ///   - digests: the digests, each exactly as long as `mechanism.hash` produces.
    ///   - credential: the key's `CKA_ID` (the credential id).
    ///   - mechanism: ECDSA (DER signature), RSA PKCS#1 v1.5 or RSA-PSS.
    /// - Returns: one signature per digest, in input order.
    /// - Throws: `PKCS11Error` — `invalidDigestLength` before anything is signed, `keyNotFound`,
    ///   `mechanismMismatch`, `tokenUnavailable` or a module error.
    public func sign(digests: [[UInt8]], credential: String, mechanism: SignatureMechanism) async throws -> [[UInt8]] {
        try await self.sign(digests: digests, credential: credential, wrapped: nil, mechanism: mechanism)
    }

    /// Signs each digest with `credential`'s key: the wrapped key `wrapped` (unwrapped on each worker that signs, or
    /// found in its cache with the same binding), or the token object with `CKA_ID` = `credential` when `wrapped` is nil.
    ///
    /// - Throws: as above, and `wrappedKeyInvalid` when the wrapped key is refused.
    public func sign(digests: [[UInt8]], credential: String, wrapped: WrappedKey?, mechanism: SignatureMechanism) async throws -> [[UInt8]] {
        if let wrapped, wrapped.algorithm.isRSA != mechanism.isRSA {
            throw PKCS11Error(.mechanismMismatch, detail: "key '\(credential)' is \(wrapped.algorithm.rawValue); cannot sign with \(mechanism)")
        }
        let length = mechanism.hash.digestLength
        if let bad = digests.firstIndex(where: { $0.count != length }) {
            throw PKCS11Error(.invalidDigestLength, detail: "digest \(bad) is \(digests[bad].count) bytes; \(mechanism.hash.rawValue) needs \(length)")
        }
        if digests.isEmpty { return [] }
        try self.token.ensureOpen()
        let workers = min(self.token.sessionCount, digests.count)
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[[UInt8]], Error>) in
            let batch = SignBatch(digests: digests, credential: credential, wrapped: wrapped, mechanism: mechanism, workers: workers, continuation: continuation)
            self.token.submit({ worker in batch.run(on: worker) }, count: workers)
        }
    }

    /// Signs one digest.
    public func sign(digest: [UInt8], credential: String, mechanism: SignatureMechanism) async throws -> [UInt8] {
        try await self.sign(digests: [digest], credential: credential, mechanism: mechanism)[0]
    }
}

/// One batch in flight: the shared index, the result slots and the continuation resumed by the last worker.
///
/// `@unchecked Sendable`: each result slot is written by exactly one worker (the one that claimed its index)
/// and read only after every worker has left (`remaining` reaches 0 with acquire-release ordering).
final class SignBatch: @unchecked Sendable {
    let digests: [[UInt8]]
    let credential: String
    let wrapped: WrappedKey?
    let mechanism: SignatureMechanism
    private let results: UnsafeMutableBufferPointer<[UInt8]>
    private let next = Atomic<Int>(0)
    private let remaining: Atomic<Int>
    private let failed = Atomic<Bool>(false)
    private let failure = Mutex<PKCS11Error?>(nil)
    private let continuation: CheckedContinuation<[[UInt8]], Error>

    init(digests: [[UInt8]], credential: String, wrapped: WrappedKey?, mechanism: SignatureMechanism, workers: Int, continuation: CheckedContinuation<[[UInt8]], Error>) {
        self.digests = digests
        self.credential = credential
        self.wrapped = wrapped
        self.mechanism = mechanism
        self.results = .allocate(capacity: digests.count)
        self.results.initialize(repeating: [])
        self.remaining = Atomic(workers)
        self.continuation = continuation
    }

    deinit {
        self.results.deinitialize()
        self.results.deallocate()
    }

    func run(on worker: Worker) {
        do {
            try self.signClaimed(on: worker)
        } catch {
            let failure = error as? PKCS11Error ?? PKCS11Error(.moduleError, detail: "\(error)")
            self.failure.withLock { if $0 == nil { $0 = failure } }
            self.failed.store(true, ordering: .relaxed)
        }
        if self.remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
            if let error = self.failure.withLock({ $0 }) {
                self.continuation.resume(throwing: error)
            } else {
                self.continuation.resume(returning: Array(self.results))
            }
        }
    }

    private func signClaimed(on worker: Worker) throws {
        var key: KeyEntry?
        var recovered = false
        while !self.failed.load(ordering: .relaxed) {
            let index = self.next.wrappingAdd(1, ordering: .relaxed).oldValue
            if index >= self.digests.count { return }
            while true {
                do {
                    let session = try worker.currentSession()
                    if key == nil { worker.applyEvictions(session: session) }
                    let entry: KeyEntry
                    if let key {
                        entry = key
                    } else if let wrapped = self.wrapped {
                        entry = KeyEntry(handle: try worker.unwrappedKey(wrapped, credential: self.credential, session: session), algorithm: wrapped.algorithm)
                        key = entry
                    } else {
                        entry = try worker.token.resolve(self.credential, session: session)
                        guard entry.algorithm.isRSA == self.mechanism.isRSA else {
                            throw PKCS11Error(.mechanismMismatch, detail: "key '\(self.credential)' is \(entry.algorithm.rawValue); cannot sign with \(self.mechanism)")
                        }
                        key = entry
                    }
                    let signature = try self.digests[index].withUnsafeBytes { digest in
                        try session.sign(key: entry.handle, mechanism: self.mechanism, digest: digest, scratch: &worker.scratch)
                    }
                    (self.results.baseAddress! + index).pointee = signature
                    break
                } catch let error as PKCS11Error where !recovered {
                    // Each worker recovers once per batch; after that, errors go through.
                    if worker.recover(from: error) {
                        // The session went away: re-opened and logged in again on the next pass; retry this digest.
                        recovered = true
                        key = nil
                    } else if error.rv == .keyHandleInvalid || error.rv == .objectHandleInvalid {
                        // A stale cached handle: look the key up again once.
                        recovered = true
                        if self.wrapped != nil {
                            worker.unwrapped.remove(self.credential)
                        } else {
                            worker.token.forgetKey(self.credential)
                        }
                        key = nil
                    } else {
                        throw error
                    }
                }
            }
        }
    }
}
