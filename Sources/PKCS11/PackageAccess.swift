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
