import Foundation

/// Where the user PIN comes from. Never a command-line argument: those are visible in `ps`.
public enum PINSource: Hashable, Sendable {
    /// A file holding the PIN (trailing newline ignored). Should be readable by the server only.
    case file(String)
    /// An environment variable holding the PIN.
    case environment(String)

    /// Reads the PIN.
    ///
    /// - Throws: `PKCS11Error.pinUnavailable` when the file or variable is missing or empty.
    func read() throws(PKCS11Error) -> SecretBytes {
        var text: String
        switch self {
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw PKCS11Error(.pinUnavailable, detail: "PIN file \(path) cannot be read")
            }
            text = String(decoding: data, as: UTF8.self)
        case .environment(let name):
            guard let value = ProcessInfo.processInfo.environment[name] else {
                throw PKCS11Error(.pinUnavailable, detail: "environment variable \(name) is not set")
            }
            text = value
        }
        while let last = text.last, last == "\n" || last == "\r" { text.removeLast() }
        guard !text.isEmpty else { throw PKCS11Error(.pinUnavailable, detail: "the PIN source \(self) is empty") }
        return SecretBytes(Array(text.utf8))
    }
}

/// How to reach a token: a module path, the token's label, a PIN source and the number of sessions.
public struct TokenConfiguration: Hashable, Sendable {
    public var modulePath: String
    public var tokenLabel: String
    public var pin: PINSource
    /// Sessions opened (and worker threads started): one operation per session at a time.
    public var sessions: Int
    /// Load the module once per session, each with its own connection to the token (nil: yes for p11-kit's RPC
    /// client `p11-kit-client.so`, whose connection threads must not share; no for every other module).
    public var connectionPerSession: Bool?
    /// `CKA_ID` of the key-encryption key that wraps holder keys (its binding key is `<kekID>-binding`).
    public var kekID: String = TokenConfiguration.defaultKEKID
    /// Unwrapped holder keys each worker keeps (session objects, least recently used evicted first).
    public var unwrappedKeyCacheSize: Int = TokenConfiguration.defaultUnwrappedKeyCacheSize

    /// The KEK's id when none is configured.
    public static let defaultKEKID = "sigillo-kek"
    /// Unwrapped keys per worker when not configured.
    public static let defaultUnwrappedKeyCacheSize = 1024

    /// Whether `Token.open` loads a module instance per session.
    var usesConnectionPerSession: Bool {
        self.connectionPerSession ?? URL(fileURLWithPath: self.modulePath).lastPathComponent.hasPrefix("p11-kit-client")
    }

    public init(modulePath: String, tokenLabel: String, pin: PINSource, sessions: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.modulePath = modulePath
        self.tokenLabel = tokenLabel
        self.pin = pin
        self.sessions = sessions
    }

    /// Parses an RFC 7512 URI such as
    /// `pkcs11:token=Sigillo%20Dev?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/sigillo/pin`.
    ///
    /// `pin-value` is refused: a PIN does not belong in configuration strings. `pin-source` accepts `file:PATH`
    /// (or a bare path) and the Sigillo extension `env:NAME`. `modulePath` and `pin` fill in what the URI leaves out.
    public init(uri: String, modulePath: String? = nil, pin: PINSource? = nil, sessions: Int = ProcessInfo.processInfo.activeProcessorCount) throws(PKCS11Error) {
        guard uri.hasPrefix("pkcs11:") else {
            throw PKCS11Error(.invalidConfiguration, detail: "a PKCS#11 URI starts with 'pkcs11:'")
        }
        let body = uri.dropFirst("pkcs11:".count)
        let parts = body.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var pathAttributes: [String: String] = [:]
        var queryAttributes: [String: String] = [:]
        for item in parts[0].split(separator: ";") {
            let (key, value) = try Self.attribute(item)
            pathAttributes[key] = value
        }
        if parts.count == 2 {
            for item in parts[1].split(separator: "&") {
                let (key, value) = try Self.attribute(item)
                queryAttributes[key] = value
            }
        }
        guard queryAttributes["pin-value"] == nil else {
            throw PKCS11Error(.invalidConfiguration, detail: "pin-value is not accepted in a PKCS#11 URI; use pin-source")
        }
        guard let token = pathAttributes["token"], !token.isEmpty else {
            throw PKCS11Error(.invalidConfiguration, detail: "the PKCS#11 URI names no token (token=...)")
        }
        guard let module = queryAttributes["module-path"] ?? modulePath else {
            throw PKCS11Error(.invalidConfiguration, detail: "no module path: add ?module-path=... or configure one")
        }
        var pinSource = pin
        if let source = queryAttributes["pin-source"] {
            if source.hasPrefix("env:") {
                pinSource = .environment(String(source.dropFirst(4)))
            } else if source.hasPrefix("file:") {
                pinSource = .file(String(source.dropFirst(5)))
            } else {
                pinSource = .file(source)
            }
        }
        guard let pinSource else {
            throw PKCS11Error(.invalidConfiguration, detail: "no PIN source: add pin-source=file:... or configure one")
        }
        self.init(modulePath: module, tokenLabel: token, pin: pinSource, sessions: sessions)
    }

    private static func attribute(_ item: Substring) throws(PKCS11Error) -> (String, String) {
        let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard pair.count == 2, let value = String(pair[1]).removingPercentEncoding else {
            throw PKCS11Error(.invalidConfiguration, detail: "malformed PKCS#11 URI attribute '\(item)'")
        }
        return (String(pair[0]), value)
    }
}

/// Secret bytes (a PIN) that are zeroed when released.
final class SecretBytes: @unchecked Sendable {
    // Immutable after init except for the zeroing in deinit, when no one else holds a reference.
    private var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func withUnsafeMutableBufferPointer<T>(_ body: (UnsafeMutableBufferPointer<UInt8>) throws(PKCS11Error) -> T) throws(PKCS11Error) -> T {
        var copy = self.bytes
        defer { copy.zeroize() }
        return try copy.withUnsafeMutableBufferPointer { buffer throws(PKCS11Error) in try body(buffer) }
    }

    deinit {
        self.bytes.zeroize()
    }
}
