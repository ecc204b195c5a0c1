// The one file of this module that imports CPKCS11 at `package` level: what other targets of this package
// (SigilloBenchSupport's raw benchmark loop) may reach of the C layer. Nothing here is public; the module's
// public API mentions no C type.
package import CPKCS11

extension PKCS11Module {
    /// Returns a function from the module's function list, or throws `functionNotSupported` when the module
    /// left it out. The raw benchmark loop calls the module through this, never through a force unwrap.
    @inline(__always)
    package func function<F>(_ keyPath: KeyPath<CK_FUNCTION_LIST, F?>, _ name: String) throws(PKCS11Error) -> F {
        guard let function = self.functions.pointee[keyPath: keyPath] else {
            throw PKCS11Error(.functionNotSupported, function: name, detail: "the module does not implement \(name)")
        }
        return function
    }
}

extension PKCS11Error {
    /// Throws the error `rv` maps to (classified as the wrapper does) unless it is `CKR_OK`.
    @inline(__always)
    package static func check(_ rv: CK_RV, _ function: String) throws(PKCS11Error) {
        if rv != UInt(CKR_OK) { throw PKCS11Error.from(rv, function: function) }
    }
}

extension Token {
    /// For each module instance of the token (one, or one per session), a session-less view the raw benchmark loop
    /// signs through: the module, the token's slot in it and the handle of private key `id` there (handles are per
    /// instance). Opens a short session on each; blocking, not for the server's paths.
    ///
    /// - Throws: `keyNotFound` when an instance does not find the key.
    package func rawSignTargets(keyID id: String) throws(PKCS11Error) -> [(module: PKCS11Module, slot: SlotID, key: ObjectHandle)] {
        var targets: [(module: PKCS11Module, slot: SlotID, key: ObjectHandle)] = []
        for module in self.modules {
            let slot = try module.slot(forTokenLabel: self.configuration.tokenLabel)
            let session = try Session(module: module, slot: slot)
            defer { session.close() }
            // Each instance of a client module is its own connection, with its own login.
            try session.login(pin: self.pin)
            guard let key = try session.findObjects([.objectClass(.privateKey), .bytes(.id, Array(id.utf8))]).first else {
                throw PKCS11Error(.keyNotFound, detail: "no key with id '\(id)' in the token")
            }
            targets.append((module, slot, key))
        }
        return targets
    }
}
