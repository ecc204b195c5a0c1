internal import CPKCS11
import Foundation
import Synchronization

/// A loaded and initialised PKCS#11 module (any vendor's `.so`).
///
/// Loaded with p11-kit (`p11_kit_module_load`, unmanaged so calls go straight to the vendor code) and
/// initialised with `CKF_OS_LOCKING_OK`: without it SoftHSM is not thread-safe. A module is loaded once per
/// process and path and stays loaded: PKCS#11 login state is per process, and finalising under another
/// user of the same module would log it out.
///
/// `@unchecked Sendable`: the function list pointer is immutable after load and the module was initialised
/// for OS locking, so its functions may be called from any thread.
public final class PKCS11Module: @unchecked Sendable {
    /// The path the module was loaded from.
    public let path: String
    /// The module's function list. Other targets of the package reach it only through `function(_:_:)`
    /// (PackageAccess.swift); nothing public exposes it.
    let functions: UnsafeMutablePointer<CK_FUNCTION_LIST>

    private static let loaded = Mutex<[String: PKCS11Module]>([:])

    /// Counts the module's initialisations: a session opened under one generation died with it (see `reinitialize`).
    private let currentGeneration = Atomic<UInt64>(0)
    /// Held for reading by every worker job that calls the module, and for writing by `reinitialize`: PKCS#11 leaves
    /// `C_Finalize` undefined while other threads are inside the module.
    private let calls = ReadWriteLock()

    /// The module's current initialisation (0 after load, +1 per `reinitialize`).
    var generation: UInt64 { self.currentGeneration.load(ordering: .acquiring) }

    /// Its key in `loaded`: the path, or a unique key for an instance of its own (`loadInstance`).
    private let key: String

    private init(path: String, key: String, functions: UnsafeMutablePointer<CK_FUNCTION_LIST>) {
        self.path = path
        self.key = key
        self.functions = functions
    }

    /// Loads and initialises the module at `path`, or returns the instance already loaded in this process.
    ///
    /// - Throws: `PKCS11Error.moduleLoadFailed` when the file is missing or is not a PKCS#11 module.
    public static func load(path: String) throws(PKCS11Error) -> PKCS11Module {
        try self.load(path: path, key: path)
    }

    /// Loads another, independent instance of the module at `path` (a second `C_GetFunctionList`), never shared
    /// with `load(path:)`. For p11-kit's RPC client each instance is its own connection to the `p11-kit server`
    /// (read from `P11_KIT_SERVER_ADDRESS` now), as another process would be. `unload()` finalises it.
    static func loadInstance(path: String) throws(PKCS11Error) -> PKCS11Module {
        try self.load(path: path, key: path + "\u{0}" + UUID().uuidString)
    }

    /// Finalises an instance from `loadInstance` (for p11-kit's client: closes its connection) once no worker uses it.
    func unload() {
        guard self.key != self.path else { return }
        let removed = Self.loaded.withLock { $0.removeValue(forKey: self.key) }
        guard removed != nil else { return }
        self.calls.lockExclusive()
        defer { self.calls.unlockExclusive() }
        _ = self.functions.pointee.C_Finalize?(nil)
        self.currentGeneration.wrappingAdd(1, ordering: .releasing)
    }

    private static func load(path: String, key: String) throws(PKCS11Error) -> PKCS11Module {
        _ = Self.ignoreBrokenPipes
        let result: Result<PKCS11Module, PKCS11Error> = self.loaded.withLock { modules in
            if let module = modules[key] { return .success(module) }
            guard FileManager.default.fileExists(atPath: path) else {
                return .failure(PKCS11Error(.moduleLoadFailed, detail: "PKCS#11 module not found at \(path)"))
            }
            guard let list = p11_kit_module_load(path, Int32(P11_KIT_MODULE_UNMANAGED)) else {
                let reason = p11_kit_message().map { String(cString: $0) } ?? "unknown reason"
                return .failure(PKCS11Error(.moduleLoadFailed, detail: "cannot load PKCS#11 module \(path): \(reason)"))
            }
            let module = PKCS11Module(path: path, key: key, functions: list)
            do throws(PKCS11Error) {
                try module.initialize()
            } catch {
                return .failure(error)
            }
            modules[key] = module
            return .success(module)
        }
        _ = Self.finalizeAtExit
        return try result.get()
    }

    /// `C_Initialize` with `CKF_OS_LOCKING_OK`; a module another library of this process initialised already is fine.
    private func initialize() throws(PKCS11Error) {
        let initialize = try self.function(\.C_Initialize, "C_Initialize")
        var args = CK_C_INITIALIZE_ARGS()
        args.flags = UInt(CKF_OS_LOCKING_OK)
        let rv = withUnsafeMutablePointer(to: &args) { initialize(UnsafeMutableRawPointer($0)) }
        guard rv == UInt(CKR_OK) || rv == UInt(CKR_CRYPTOKI_ALREADY_INITIALIZED) else {
            throw PKCS11Error.from(rv, function: "C_Initialize")
        }
    }

    /// A client module that talks to its token over a socket (p11-kit's `p11-kit-client.so`) writes to it with plain
    /// `write`: once the server is gone, the next call would kill the process with SIGPIPE instead of failing with
    /// `CKR_DEVICE_REMOVED`. Ignored here, unless the program installed a handler of its own.
    private static let ignoreBrokenPipes: Void = {
        var current = sigaction()
        guard sigaction(SIGPIPE, nil, &current) == 0, current.__sigaction_handler.sa_handler == nil else { return }
        signal(SIGPIPE, SIG_IGN)
    }()

    /// Runs `body` while no `reinitialize` can finalise the module (a worker's job; several run at once).
    func withCalls<T>(_ body: () throws -> T) rethrows -> T {
        self.calls.lockShared()
        defer { self.calls.unlockShared() }
        return try body()
    }

    /// `C_Finalize` then `C_Initialize`, unless another thread did it since the caller saw generation `seen`.
    ///
    /// The recovery of a client module whose connection broke: p11-kit's RPC client answers `CKR_DEVICE_REMOVED` to
    /// every call after its server went away, even once the server is back, until the module is initialised again,
    /// which reconnects. Every session (of every `Token` on this module) dies with it; handles must be looked up again.
    /// The caller runs inside `withCalls`: its shared hold is given up while the module is re-initialised.
    ///
    /// - Throws: `tokenUnavailable` when `C_Initialize` fails.
    func reinitialize(seen: UInt64) throws(PKCS11Error) {
        self.calls.unlockShared()
        defer { self.calls.lockShared() }
        self.calls.lockExclusive()
        defer { self.calls.unlockExclusive() }
        guard self.generation == seen else { return }
        // Not initialised any more (a failed C_Initialize earlier) is fine: the point is the C_Initialize below.
        _ = self.functions.pointee.C_Finalize?(nil)
        self.currentGeneration.wrappingAdd(1, ordering: .releasing)
        do {
            try self.initialize()
        } catch {
            throw PKCS11Error(.tokenUnavailable, function: error.function, rv: error.rv, detail: "cannot initialise \(self.path) again: \(error.detail)")
        }
    }

    /// Registered (once) after the first `C_Initialize`: at process exit, `C_Finalize` on every loaded module.
    ///
    /// A module that is never finalised tears itself down in its library destructors, after the crypto library it
    /// uses has run its own exit handlers: SoftHSM then crashes now and then as the process exits (SIGSEGV in
    /// `sigillo ca init` after its work was done, seen under load). Handlers run in reverse order, so this one,
    /// registered after `C_Initialize`, runs before those the module's initialisation registered.
    private static let finalizeAtExit: Void = {
        atexit {
            PKCS11Module.loaded.withLock { modules in
                for module in modules.values {
                    _ = module.functions.pointee.C_Finalize?(nil)
                }
                modules.removeAll()
            }
        }
    }()

    /// The slots whose token is present and initialised, with their labels.
    public func tokens() throws(PKCS11Error) -> [(slot: SlotID, label: String, serial: String)] {
        // SoftHSM rescans its token folder in C_GetSlotList and aborts ("SlotManager::insertToken: Assertion") when two
        // threads do it at once: one scan of the slot list at a time, initialisations included.
        try self.slotList.withLock { _ throws(PKCS11Error) in try self.tokensLocked() }
    }

    private func tokensLocked() throws(PKCS11Error) -> [(slot: SlotID, label: String, serial: String)] {
        let getSlotList = try self.function(\.C_GetSlotList, "C_GetSlotList")
        let getTokenInfo = try self.function(\.C_GetTokenInfo, "C_GetTokenInfo")
        var count: CK_ULONG = 0
        try check(getSlotList(CK_BBOOL(CK_TRUE), nil, &count), "C_GetSlotList")
        var slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
        if count > 0 {
            try check(slots.withUnsafeMutableBufferPointer { getSlotList(CK_BBOOL(CK_TRUE), $0.baseAddress, &count) }, "C_GetSlotList")
        }
        var result: [(slot: SlotID, label: String, serial: String)] = []
        for slot in slots.prefix(Int(count)) {
            var info = CK_TOKEN_INFO()
            guard getTokenInfo(slot, &info) == UInt(CKR_OK) else { continue }
            guard info.flags & UInt(CKF_TOKEN_INITIALIZED) != 0 else { continue }
            let label = withUnsafeBytes(of: info.label) { paddedString($0) }
            let serial = withUnsafeBytes(of: info.serialNumber) { paddedString($0) }
            result.append((SlotID(rawValue: UInt(slot)), label, serial))
        }
        return result
    }

    /// The slot of the initialised token with this label.
    ///
    /// - Throws: `tokenNotFound` when no such token is present.
    public func slot(forTokenLabel label: String) throws(PKCS11Error) -> SlotID {
        let tokens = try self.tokens()
        guard let token = tokens.first(where: { $0.label == label }) else {
            throw PKCS11Error(.tokenNotFound, detail: "no initialised token labelled '\(label)' in \(self.path)")
        }
        return token.slot
    }

    /// Initialises a new token in the first present but uninitialised slot (SoftHSM always offers one) and
    /// sets its user PIN. Used by set-up tooling and tests; production tokens are initialised by their vendor tools.
    ///
    /// - Returns: the slot of the new token.
    public func initializeToken(label: String, soPIN: String, userPIN: String) throws(PKCS11Error) -> SlotID {
        // Two initialisations at once would race for the same free slot (and SoftHSM's slot scan is not thread-safe).
        try self.slotList.withLock { _ throws(PKCS11Error) in
            try self.initializeTokenLocked(label: label, soPIN: soPIN, userPIN: userPIN)
        }
    }

    /// Held while the slot list is read or a token initialised.
    private let slotList = Mutex<Void>(())

    private func initializeTokenLocked(label: String, soPIN: String, userPIN: String) throws(PKCS11Error) -> SlotID {
        let getSlotList = try self.function(\.C_GetSlotList, "C_GetSlotList")
        let getTokenInfo = try self.function(\.C_GetTokenInfo, "C_GetTokenInfo")
        let initToken = try self.function(\.C_InitToken, "C_InitToken")
        var count: CK_ULONG = 0
        try check(getSlotList(CK_BBOOL(CK_TRUE), nil, &count), "C_GetSlotList")
        var slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
        try check(slots.withUnsafeMutableBufferPointer { getSlotList(CK_BBOOL(CK_TRUE), $0.baseAddress, &count) }, "C_GetSlotList")
        let free = slots.prefix(Int(count)).first { slot in
            var info = CK_TOKEN_INFO()
            return getTokenInfo(slot, &info) == UInt(CKR_OK) && info.flags & UInt(CKF_TOKEN_INITIALIZED) == 0
        }
        guard let slot = free else {
            throw PKCS11Error(.tokenNotFound, detail: "no free slot to initialise a token in \(self.path)")
        }
        var paddedLabel = [UInt8](repeating: 0x20, count: 32)
        for (index, byte) in label.utf8.prefix(32).enumerated() { paddedLabel[index] = byte }
        var so = Array(soPIN.utf8)
        defer { so.zeroize() }
        try check(so.withUnsafeMutableBufferPointer { soBuffer in
            paddedLabel.withUnsafeMutableBufferPointer { initToken(slot, soBuffer.baseAddress, CK_ULONG(soBuffer.count), $0.baseAddress) }
        }, "C_InitToken")

        let session = try Session(module: self, slot: SlotID(rawValue: UInt(slot)))
        defer { session.close() }
        try session.login(userType: CK_USER_TYPE(CKU_SO), pin: soPIN)
        let initPIN = try self.function(\.C_InitPIN, "C_InitPIN")
        var user = Array(userPIN.utf8)
        defer { user.zeroize() }
        try check(user.withUnsafeMutableBufferPointer { initPIN(session.handle, $0.baseAddress, CK_ULONG($0.count)) }, "C_InitPIN")
        try session.logout()
        return SlotID(rawValue: UInt(slot))
    }

    /// Closes every session of this process on `slot` (`C_CloseAllSessions`), which also logs the process out of
    /// the token: what a removed device does to a pool. For tests of the recovery path.
    package func closeAllSessions(slot: SlotID) throws(PKCS11Error) {
        let closeAll = try self.function(\.C_CloseAllSessions, "C_CloseAllSessions")
        try check(closeAll(CK_SLOT_ID(slot.rawValue)), "C_CloseAllSessions")
    }
}

/// A space-padded fixed-size PKCS#11 string, trimmed.
func paddedString(_ bytes: UnsafeRawBufferPointer) -> String {
    var end = bytes.count
    while end > 0, bytes[end - 1] == 0x20 || bytes[end - 1] == 0 { end -= 1 }
    return String(decoding: bytes.prefix(end), as: UTF8.self)
}
