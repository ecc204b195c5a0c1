import Foundation
import PKCS11
import Synchronization

/// A SoftHSM token made for one test.
///
/// SoftHSM reads its configuration once per process, so the test process gets one token directory in a
/// temporary folder, and every test initialises its own token in it (`C_InitToken` on the free slot, a
/// unique label, random PINs). No test sees another's keys or the developer's tokens.
public final class TestToken: Sendable {
    public let label: String
    public let userPIN: String
    public let soPIN: String
    /// A folder of this test's own (PIN file, databases, outputs).
    public let directory: URL
    public let pinFile: String
    public let configuration: TokenConfiguration
    private let opened: Token?
    public var token: Token { self.opened! }

    public convenience init(sessions: Int = 2) throws {
        try self.init(sessions: sessions, open: true)
    }

    /// A token only initialised, not opened by this process (for login failures: once a process has logged
    /// in, PKCS#11 answers `CKR_USER_ALREADY_LOGGED_IN` to any PIN).
    public static func unopened() throws -> TestToken {
        try TestToken(sessions: 1, open: false)
    }

    private init(sessions: Int, open: Bool) throws {
        let module = try TestHSM.module()
        self.directory = try TestHSM.makeTemporaryDirectory()
        self.label = "t-" + UUID().uuidString.prefix(13).lowercased()
        self.userPIN = "u" + UUID().uuidString.prefix(12)
        self.soPIN = "s" + UUID().uuidString.prefix(12)
        _ = try module.initializeToken(label: self.label, soPIN: self.soPIN, userPIN: self.userPIN)
        self.pinFile = self.directory.appendingPathComponent("user.pin").path
        try Data((self.userPIN + "\n").utf8).write(to: URL(fileURLWithPath: self.pinFile))
        self.configuration = TokenConfiguration(modulePath: TestHSM.modulePath, tokenLabel: self.label, pin: .file(self.pinFile), sessions: sessions)
        self.opened = open ? try Token.open(self.configuration) : nil
    }

    /// Environment for another process (`sigillo`, `pkcs11-tool`) that sees only a copy of this token, taken now.
    ///
    /// Other tests create tokens and keys in the shared token folder at the same time; a SoftHSM in another
    /// process reading a half-written object file of theirs can crash, so a child never scans that folder.
    public func isolatedEnvironment() throws -> [String: String] {
        let tokens = TestHSM.root.appendingPathComponent("tokens")
        let label = Data(self.label.utf8)
        let folders = try FileManager.default.contentsOfDirectory(at: tokens, includingPropertiesForKeys: nil)
        guard let folder = folders.first(where: { (try? Data(contentsOf: $0.appendingPathComponent("token.object")))?.range(of: label) != nil }) else {
            throw PKCS11Error(.tokenNotFound, detail: "no token folder holds label \(self.label)")
        }
        let isolated = self.directory.appendingPathComponent("softhsm-\(UUID().uuidString.prefix(8))")
        let copy = isolated.appendingPathComponent("tokens").appendingPathComponent(folder.lastPathComponent)
        try FileManager.default.createDirectory(at: copy.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: folder, to: copy)
        let conf = isolated.appendingPathComponent("softhsm2.conf")
        let text = """
            directories.tokendir = \(isolated.appendingPathComponent("tokens").path)
            objectstore.backend = file
            log.level = ERROR
            slots.removable = false

            """
        try Data(text.utf8).write(to: conf)
        var environment = ProcessInfo.processInfo.environment
        environment["SOFTHSM2_CONF"] = conf.path
        return environment
    }

    deinit {
        self.opened?.close()
        try? FileManager.default.removeItem(at: self.directory)
    }
}

/// The process-wide SoftHSM set-up for tests.
public enum TestHSM {
    /// The module under test: `SIGILLO_TEST_PKCS11_MODULE`, or Debian's SoftHSM.
    public static let modulePath = ProcessInfo.processInfo.environment["SIGILLO_TEST_PKCS11_MODULE"] ?? "/usr/lib/softhsm/libsofthsm2.so"

    /// The token folder and configuration file of this test process.
    public static let root: URL = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("sigillo-tests-\(getpid())-\(UUID().uuidString.prefix(8))")
        let tokens = root.appendingPathComponent("tokens")
        try! FileManager.default.createDirectory(at: tokens, withIntermediateDirectories: true)
        let conf = root.appendingPathComponent("softhsm2.conf")
        let text = """
            directories.tokendir = \(tokens.path)
            objectstore.backend = file
            log.level = ERROR
            slots.removable = false

            """
        try! Data(text.utf8).write(to: conf)
        setenv("SOFTHSM2_CONF", conf.path, 1)
        return root
    }()

    /// Loads the module after pointing SoftHSM at the test token folder.
    public static func module() throws -> PKCS11Module {
        _ = Self.root
        return try PKCS11Module.load(path: Self.modulePath)
    }

    /// A new empty folder under the test root.
    public static func makeTemporaryDirectory() throws -> URL {
        let url = Self.root.appendingPathComponent("t-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Runs a program and returns its exit status and output (stdout + stderr).
@discardableResult
public func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, input: Data? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
    process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
    if let environment { process.environment = environment }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let stdin = Pipe()
    process.standardInput = stdin
    try process.run()
    if let input { stdin.fileHandleForWriting.write(input) }
    try stdin.fileHandleForWriting.close()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// `run` on a Dispatch thread: a test that waits for a program talking to an in-process server must not
/// block a thread of the cooperative pool the server needs.
public func runOffPool(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, input: Data? = nil) async throws -> (status: Int32, output: String) {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            continuation.resume(with: Result { try run(executable, arguments, environment: environment, input: input) })
        }
    }
}
