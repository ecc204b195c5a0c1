internal import CPKCS11
public import PKCS11
import Synchronization

/// The token micro-benchmark's baseline: `C_SignInit` + `C_Sign` called straight on the module's function list,
/// one session per thread, with the key handle the token's cache holds.
///
/// The only code outside the PKCS11 module that calls PKCS#11 itself, and the reason this module exists: the
/// `sigillo-bench` executable and everything shipped stay on the Swift API.
public enum RawSignLoop {
    /// Signatures per second of `threads` threads looping on `C_SignInit` + `C_Sign` with the key `keyID` for `seconds`.
    ///
    /// What the `Signer`'s hot path hands the token, minus the wrapper: the same bytes to `C_Sign` (the digest,
    /// or `DigestInfo ‖ digest` for PKCS#1 v1.5), the same mechanism and PSS parameters. Each thread opens its own
    /// session on the token's slot; the login of the token's pool covers it (PKCS#11 login state is per process).
    /// With a connection per session (p11-kit's client), thread i uses the token's i-th module instance, as worker i does.
    /// Blocks the calling thread for `seconds`: call it off Swift's cooperative pool.
    ///
    /// - Parameters:
    ///   - token: an open token (its pool keeps the process logged in).
    ///   - keyID: the private key's `CKA_ID` (looked up in each module instance: handles are per instance).
    ///   - mechanism: how to sign; the digest signed is a constant of the mechanism's hash length.
    ///   - threads: threads, each with its own session.
    ///   - seconds: how long to measure.
    /// - Throws: `PKCS11Error`: `functionNotSupported` when the module lacks a function, or the first failure of
    ///   a thread's `C_OpenSession`, `C_SignInit` or `C_Sign` (a failed thread stops counting, so its rate would
    ///   be wrong).
    public static func signaturesPerSecond(token: Token, keyID: String, mechanism: SignatureMechanism, threads: Int, seconds: Double) throws(PKCS11Error) -> Double {
        let targets = try token.rawSignTargets(keyID: keyID)
        // The module's functions are one list per library: the same for every instance.
        let module = targets[0].module
        let openSession = try module.function(\.C_OpenSession, "C_OpenSession")
        let closeSession = try module.function(\.C_CloseSession, "C_CloseSession")
        let signInit = try module.function(\.C_SignInit, "C_SignInit")
        let sign = try module.function(\.C_Sign, "C_Sign")
        let nextThread = Atomic<Int>(0)
        let hash = mechanism.hash
        let digest = [UInt8](repeating: 0x5A, count: hash.digestLength)
        let input: [UInt8]
        let mechanismType: CK_MECHANISM_TYPE
        switch mechanism {
        case .ecdsa:
            input = digest
            mechanismType = CK_MECHANISM_TYPE(CKM_ECDSA)
        case .rsaPKCS1v15:
            input = hash.digestInfoPrefix + digest
            mechanismType = CK_MECHANISM_TYPE(CKM_RSA_PKCS)
        case .rsaPSS:
            input = digest
            mechanismType = CK_MECHANISM_TYPE(CKM_RSA_PKCS_PSS)
        }
        let isPSS = mechanismType == CK_MECHANISM_TYPE(CKM_RSA_PKCS_PSS)
        let failure = Mutex<PKCS11Error?>(nil)

        let rate = ThreadLoop.stepsPerSecond(threads: threads, seconds: seconds) { () -> ThreadLoop.Worker? in
            let target = targets[nextThread.wrappingAdd(1, ordering: .relaxed).oldValue % targets.count]
            let slot = CK_SLOT_ID(target.slot.rawValue)
            let handle = CK_OBJECT_HANDLE(target.key.rawValue)
            var session: CK_SESSION_HANDLE = 0
            let opened = openSession(slot, CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION), nil, nil, &session)
            guard Self.succeeded(opened, "C_OpenSession", failure: failure) else { return nil }
            var message = input
            var signature = [UInt8](repeating: 0, count: 1024)
            // The PSS parameters must stay put while the thread signs: allocated here, freed by `finish`.
            let pss = UnsafeMutablePointer<CK_RSA_PKCS_PSS_PARAMS>.allocate(capacity: 1)
            pss.initialize(to: CK_RSA_PKCS_PSS_PARAMS(hashAlg: Self.hashMechanism(hash), mgf: Self.mgf1(hash), sLen: CK_ULONG(hash.digestLength)))
            var ck = CK_MECHANISM(
                mechanism: mechanismType, pParameter: isPSS ? UnsafeMutableRawPointer(pss) : nil,
                ulParameterLen: isPSS ? CK_ULONG(MemoryLayout<CK_RSA_PKCS_PSS_PARAMS>.size) : 0)
            let step = { () -> Bool in
                var length = CK_ULONG(signature.count)
                guard Self.succeeded(signInit(session, &ck, handle), "C_SignInit", failure: failure) else { return false }
                return Self.succeeded(sign(session, &message, CK_ULONG(message.count), &signature, &length), "C_Sign", failure: failure)
            }
            let finish = {
                _ = closeSession(session)
                pss.deallocate()
            }
            return (step, finish)
        }
        if let error = failure.withLock({ $0 }) { throw error }
        return rate
    }

    /// True for `CKR_OK`; otherwise records the first failure (classified as the wrapper does) and returns false.
    private static func succeeded(_ rv: CK_RV, _ function: String, failure: borrowing Mutex<PKCS11Error?>) -> Bool {
        do {
            try PKCS11Error.check(rv, function)
            return true
        } catch {
            failure.withLock { if $0 == nil { $0 = error } }
            return false
        }
    }

    /// `CKM_SHA…` of `hash` (the PSS parameters' hash).
    private static func hashMechanism(_ hash: HashAlgorithm) -> CK_MECHANISM_TYPE {
        switch hash {
        case .sha256: return CK_MECHANISM_TYPE(CKM_SHA256)
        case .sha384: return CK_MECHANISM_TYPE(CKM_SHA384)
        case .sha512: return CK_MECHANISM_TYPE(CKM_SHA512)
        }
    }

    /// `CKG_MGF1_SHA…` of `hash` (the PSS parameters' mask generation function).
    private static func mgf1(_ hash: HashAlgorithm) -> CK_RSA_PKCS_MGF_TYPE {
        switch hash {
        case .sha256: return CK_RSA_PKCS_MGF_TYPE(CKG_MGF1_SHA256)
        case .sha384: return CK_RSA_PKCS_MGF_TYPE(CKG_MGF1_SHA384)
        case .sha512: return CK_RSA_PKCS_MGF_TYPE(CKG_MGF1_SHA512)
        }
    }
}
