import Foundation
#if canImport(Glibc)
import Glibc
#endif
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

    /// A token whose workers keep at most `unwrappedKeyCacheSize` unwrapped holder keys each.
    public convenience init(sessions: Int = 2, unwrappedKeyCacheSize: Int) throws {
        try self.init(sessions: sessions, open: true, unwrappedKeyCacheSize: unwrappedKeyCacheSize)
    }

    /// A token only initialised, not opened by this process (for login failures: once a process has logged
    /// in, PKCS#11 answers `CKR_USER_ALREADY_LOGGED_IN` to any PIN).
    public static func unopened() throws -> TestToken {
        try TestToken(sessions: 1, open: false)
    }

    private init(sessions: Int, open: Bool, unwrappedKeyCacheSize: Int = TokenConfiguration.defaultUnwrappedKeyCacheSize) throws {
        let module = try TestHSM.module()
        self.directory = try TestHSM.makeTemporaryDirectory()
        self.label = "t-" + UUID().uuidString.prefix(13).lowercased()
        self.userPIN = "u" + UUID().uuidString.prefix(12)
        self.soPIN = "s" + UUID().uuidString.prefix(12)
        _ = try module.initializeToken(label: self.label, soPIN: self.soPIN, userPIN: self.userPIN)
        self.pinFile = self.directory.appendingPathComponent("user.pin").path
        try Data((self.userPIN + "\n").utf8).write(to: URL(fileURLWithPath: self.pinFile))
        var configuration = TokenConfiguration(modulePath: TestHSM.modulePath, tokenLabel: self.label, pin: .file(self.pinFile), sessions: sessions)
        configuration.unwrappedKeyCacheSize = unwrappedKeyCacheSize
        self.configuration = configuration
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
        var environment = TestHSM.environment
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
        Self.snapshot = ProcessInfo.processInfo.environment
        return root
    }()

    /// This test process's environment as its child processes get it (`SOFTHSM2_CONF` included), read once, when the
    /// test token folder is made. Use it instead of `ProcessInfo.processInfo.environment`, and give every `Process`
    /// an environment: the process's own environment changes while tests run (`P11KitServer.openToken` sets
    /// `P11_KIT_SERVER_ADDRESS` for a moment), and reading it meanwhile — as `Process.run()` does for a process without
    /// an environment of its own — can read freed memory and crash the whole test run.
    public static var environment: [String: String] {
        _ = Self.root
        return Self.snapshot
    }

    nonisolated(unsafe) private static var snapshot: [String: String] = [:]

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
///
/// Spawned with `posix_spawn` directly: `Foundation.Process.run()` crashed now and then (a bad read in its own set-up)
/// when many tests started programs at once. The child gets the environment given (else `TestHSM.environment`),
/// stdin from `input`, stdout and stderr on one pipe, and none of this process's other descriptors.
@discardableResult
public func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, input: Data? = nil) throws -> (status: Int32, output: String) {
    let path = executable.hasPrefix("/") ? executable : "/usr/bin/env"
    let argv = [path] + (executable.hasPrefix("/") ? arguments : [executable] + arguments)
    let envp = (environment ?? TestHSM.environment).map { "\($0)=\($1)" }
    var output: [Int32] = [0, 0]
    var stdin: [Int32] = [0, 0]
    guard pipe(&output) == 0 else { throw SpawnError(description: "pipe: errno \(errno)") }
    guard pipe(&stdin) == 0 else {
        close(output[0]); close(output[1])
        throw SpawnError(description: "pipe: errno \(errno)")
    }
    for fd in output + stdin { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, stdin[0], 0)
    posix_spawn_file_actions_adddup2(&actions, output[1], 1)
    posix_spawn_file_actions_adddup2(&actions, output[1], 2)
    closeInheritedDescriptors(&actions)
    var pid: pid_t = 0
    let spawned = withCStrings(argv) { cArgv in
        withCStrings(envp) { cEnvp in posix_spawn(&pid, path, &actions, nil, cArgv, cEnvp) }
    }
    close(stdin[0])
    close(output[1])
    guard spawned == 0 else {
        close(stdin[1]); close(output[0])
        throw SpawnError(description: "\(path): cannot start (errno \(spawned))")
    }
    // The input in one go, as before (small: a password and OTP lines), then end of input.
    let writer = FileHandle(fileDescriptor: stdin[1], closeOnDealloc: true)
    if let input { try? writer.write(contentsOf: input) }
    try? writer.close()
    let reader = FileHandle(fileDescriptor: output[0], closeOnDealloc: true)
    let data = (try? reader.readToEnd()) ?? Data()
    try? reader.close()
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    // WIFEXITED / WEXITSTATUS, and a signal as 128 + its number, as a shell says it.
    let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    return (code, String(decoding: data, as: UTF8.self))
}

/// Every descriptor from 3 up closed in the child: glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and
/// later; the Swift Glibc module does not declare it), else each descriptor open now.
private func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
        return
    }
    let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
    for fd in open where fd >= 3 { posix_spawn_file_actions_addclose(&actions, fd) }
}

/// A program that could not be started.
public struct SpawnError: Error, CustomStringConvertible {
    public let description: String
}

/// `strings` as a NULL-terminated array of C strings for the duration of `body`.
private func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> T) -> T {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
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

/// A helper program that runs beside the test (a test SMTP relay): started with its stdin and stdout on pipes, its
/// first output line (e.g. the port it listens on) read on a Dispatch thread, never on the cooperative pool.
/// `stop()` closes its stdin and terminates it; its stderr goes to the test's.
public final class BackgroundProcess: @unchecked Sendable {
    private let process: Process
    private let stdin: Pipe
    /// The first line the program printed.
    public let firstLine: String

    private init(process: Process, stdin: Pipe, firstLine: String) {
        self.process = process
        self.stdin = stdin
        self.firstLine = firstLine
    }

    /// Starts `executable` and waits (off the pool) for its first line of output.
    /// - Throws: when the program cannot start or exits before printing a line.
    public static func start(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> BackgroundProcess {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: executable)
                    process.arguments = arguments
                    process.environment = environment ?? TestHSM.environment
                    let stdin = Pipe()
                    let stdout = Pipe()
                    process.standardInput = stdin
                    process.standardOutput = stdout
                    try process.run()
                    var line = Data()
                    while !line.contains(0x0A) {
                        let chunk = stdout.fileHandleForReading.availableData
                        if chunk.isEmpty {
                            process.waitUntilExit()
                            throw BackgroundProcessError(description: "\(executable) exited (\(process.terminationStatus)) before printing a line")
                        }
                        line.append(chunk)
                    }
                    let text = String(decoding: line.prefix { $0 != 0x0A }, as: UTF8.self)
                    return BackgroundProcess(process: process, stdin: stdin, firstLine: text.trimmingCharacters(in: .whitespaces))
                })
            }
        }
    }

    /// Writes `text` to the program's stdin.
    public func send(_ text: String) {
        self.stdin.fileHandleForWriting.write(Data(text.utf8))
    }

    /// Closes the program's stdin and waits (off the pool) until it ends by itself.
    public func finish() async {
        let process = self.process
        let stdin = self.stdin
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                try? stdin.fileHandleForWriting.close()
                process.waitUntilExit()
                continuation.resume()
            }
        }
    }

    /// Closes the program's stdin, terminates it and waits (off the pool) until it is gone.
    public func stop() async {
        let process = self.process
        let stdin = self.stdin
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                try? stdin.fileHandleForWriting.close()
                if process.isRunning { process.terminate() }
                process.waitUntilExit()
                continuation.resume()
            }
        }
    }

    deinit {
        if self.process.isRunning { self.process.terminate() }
    }
}

public struct BackgroundProcessError: Error, CustomStringConvertible {
    public let description: String

    public init(description: String) {
        self.description = description
    }
}

/// A test mail relay: one of the Python scripts in `Tests/Interop` (`smtp_sink.py`: aiosmtpd writing each message it
/// accepts to `folder`; `smtp_script.py`: a relay misbehaving on purpose), run from the project's venv on 127.0.0.1.
public struct TestSMTPRelay: Sendable {
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let python = repositoryRoot.appendingPathComponent(".venv/bin/python").path

    public let process: BackgroundProcess
    public let port: Int
    public let folder: URL

    /// Starts `Tests/Interop/<script>` with `arguments` and waits for the port it prints.
    public static func launch(_ script: String, _ arguments: [String], folder: URL, environment: [String: String]? = nil) async throws -> TestSMTPRelay {
        guard FileManager.default.isExecutableFile(atPath: self.python) else { throw BackgroundProcessError(description: "run `make venv` first (make test does)") }
        let path = self.repositoryRoot.appendingPathComponent("Tests/Interop/\(script)").path
        let process = try await BackgroundProcess.start(self.python, [path, "--timeout", "600"] + arguments, environment: environment)
        guard let port = Int(process.firstLine) else { throw BackgroundProcessError(description: "\(script) printed '\(process.firstLine)' instead of its port") }
        return TestSMTPRelay(process: process, port: port, folder: folder)
    }

    /// `smtp_sink.py` writing to `folder` (`port` 0: a free one); `options` are its flags (`--reject-rcpt nobody`, …).
    public static func sink(folder: URL, port: Int = 0, options: [String] = [], environment: [String: String]? = nil) async throws -> TestSMTPRelay {
        try await self.launch("smtp_sink.py", ["--dir", folder.path, "--port", "\(port)"] + options, folder: folder, environment: environment)
    }

    /// The `.json` descriptions `smtp_sink.py` wrote of the messages received so far, in order.
    public func receivedDescriptions() throws -> [URL] {
        try FileManager.default.contentsOfDirectory(atPath: self.folder.path).filter { $0.hasSuffix(".json") }.sorted().map { self.folder.appendingPathComponent($0) }
    }

    public func stop() async {
        await self.process.stop()
    }
}
