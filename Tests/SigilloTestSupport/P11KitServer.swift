import Foundation
import PKCS11
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A test token exported over p11-kit's RPC, as a network HSM would be reached: `p11-kit server --provider
/// <SoftHSM> -n <socket> "pkcs11:token=<label>"` on a unix socket in the test's folder; clients load
/// `p11-kit-client.so` with `P11_KIT_SERVER_ADDRESS` set to `address`.
///
/// What `p11-kit server` does (p11-kit 0.24.1, measured here): in the foreground (`-f`) it binds and listens, then
/// prints `P11_KIT_SERVER_ADDRESS=unix:path=…; export …` on stdout; that line is the readiness signal waited for. For
/// each client connection it forks and executes `p11-kit-remote --provider <module> <token URI>`: each connection (each
/// `C_GetFunctionList` of the client module; a `Token` opens one per session) gets its own process with its own
/// SoftHSM instance and its own login state, all on the same token files, which SoftHSM re-reads when they change. Killing the server alone
/// would leave connected clients served by their `p11-kit-remote`: `kill()` SIGKILLs the whole process group (the
/// server is started in its own group) and waits until every member is gone — the HSM vanishes for every client.
///
/// The server runs with the token's `isolatedEnvironment()` (its own SoftHSM configuration and a copy of the token
/// taken at `init`); test code reaches the token only through the server. `stop()` (also run by `deinit`) leaves no
/// process behind. Starting again reuses the socket path (the server replaces the socket file).
public final class P11KitServer: @unchecked Sendable {
    /// The socket the server listens on (inside the test's folder).
    public let socketPath: String
    /// The token's label.
    public let tokenLabel: String
    /// The user PIN file of the token.
    public let pinFile: String
    /// The SoftHSM environment the server runs with (the token's isolated copy).
    public let serverEnvironment: [String: String]
    private let running = Mutex<Process?>(nil)
    /// The server's stdout, kept open while it runs.
    private let output = Mutex<Pipe?>(nil)

    /// The value of `P11_KIT_SERVER_ADDRESS` for clients.
    public var address: String { "unix:path=\(self.socketPath)" }

    /// The token's PKCS#11 URI as the server exports it.
    public var tokenURI: String { "pkcs11:token=\(self.tokenLabel)" }

    /// Prepares (does not start) a server exporting `token`, which should be `TestToken.unopened()`: the server works
    /// on a copy of its token folder taken now.
    public init(exporting token: TestToken) throws {
        self.socketPath = token.directory.appendingPathComponent("p11.sock").path
        guard self.socketPath.utf8.count < 100 else {
            throw BackgroundProcessError(description: "socket path too long for a unix socket: \(self.socketPath)")
        }
        self.tokenLabel = token.label
        self.pinFile = token.pinFile
        self.serverEnvironment = try token.isolatedEnvironment()
    }

    deinit {
        self.killNow()
    }

    // MARK: Clients

    /// The client module, `p11-kit-client.so`, in the directory `pkg-config p11-kit-1 --variable p11_module_path` names
    /// (Debian: `/usr/lib/x86_64-linux-gnu/pkcs11`, package `p11-kit-modules`).
    public static let clientModulePath: String = {
        var directories: [String] = []
        if let output = try? run("pkg-config", ["p11-kit-1", "--variable", "p11_module_path"]), output.status == 0 {
            let directory = output.output.trimmingCharacters(in: .whitespacesAndNewlines)
            if !directory.isEmpty { directories.append(directory) }
        }
        directories += ["/usr/lib/x86_64-linux-gnu/pkcs11", "/usr/lib/aarch64-linux-gnu/pkcs11", "/usr/lib64/pkcs11", "/usr/lib/pkcs11"]
        let candidates = directories.map { $0 + "/p11-kit-client.so" }
        return candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[0]
    }()

    /// `base` (default: this process's environment) with `P11_KIT_SERVER_ADDRESS` set: for a child process.
    public func clientEnvironment(_ base: [String: String] = TestHSM.environment) -> [String: String] {
        var environment = base
        environment["P11_KIT_SERVER_ADDRESS"] = self.address
        return environment
    }

    /// How a client opens the exported token.
    public func tokenConfiguration(sessions: Int = 2) -> TokenConfiguration {
        TokenConfiguration(modulePath: Self.clientModulePath, tokenLabel: self.tokenLabel, pin: .file(self.pinFile), sessions: sessions)
    }

    /// Opens the token in this process through client module instances of its own (one connection per session, each
    /// with its own `p11-kit-remote` and SoftHSM), as another process would.
    ///
    /// `P11_KIT_SERVER_ADDRESS` is read by the client module once per instance, when it is loaded; it is set for that
    /// moment only, under a lock shared by every server of this process.
    public func openToken(sessions: Int = 2) throws -> Token {
        try Self.addressLock.withLock { _ in
            setenv("P11_KIT_SERVER_ADDRESS", self.address, 1)
            defer { unsetenv("P11_KIT_SERVER_ADDRESS") }
            return try Token.open(self.tokenConfiguration(sessions: sessions))
        }
    }

    private static let addressLock = Mutex<Void>(())

    // MARK: Running

    /// Starts the server and waits until it listens (its address line on stdout).
    ///
    /// - Throws: when it is running already, cannot start, or exits (or stays silent for a minute) before listening.
    public func start() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["p11-kit", "server", "-f", "--provider", TestHSM.modulePath, "-n", self.socketPath, self.tokenURI]
        process.environment = self.serverEnvironment
        process.standardInput = FileHandle.nullDevice
        let stdout = Pipe()
        process.standardOutput = stdout
        try self.running.withLock { current in
            guard current == nil else { throw BackgroundProcessError(description: "the p11-kit server is running already") }
            try process.run()
            current = process
        }
        self.output.withLock { $0 = stdout }
        // Foundation starts a child in a process group of its own; `kill()` relies on it for the p11-kit-remote children.
        guard getpgid(process.processIdentifier) == process.processIdentifier else {
            self.killNow()
            throw BackgroundProcessError(description: "p11-kit server is not the leader of its process group")
        }
        let line = await Self.firstLine(of: stdout.fileHandleForReading, limit: .seconds(60))
        guard let line, line.hasPrefix("P11_KIT_SERVER_ADDRESS=") else {
            self.killNow()
            throw BackgroundProcessError(description: "p11-kit server did not report its address (got \(line ?? "nothing"))")
        }
    }

    /// Kills the server and every `p11-kit-remote` it started (SIGKILL to its process group, as if the HSM vanished)
    /// and waits until all of them are gone. Idempotent.
    public func kill() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                self.killNow()
                continuation.resume()
            }
        }
    }

    /// Same as `kill()`: at the end of a test.
    public func stop() async {
        await self.kill()
    }

    /// Whether the server was started and not killed since.
    public var isRunning: Bool { self.running.withLock { $0 != nil } }

    /// Blocking kill; waits (up to a minute in all) for each member of the group to exit.
    private func killNow() {
        guard let process = self.running.withLock({ current in defer { current = nil }; return current }) else { return }
        let group = process.processIdentifier
        guard process.isRunning else { return }
        let members = Self.processes(inGroup: group)
        let descriptors = members.compactMap { pid -> Int32? in
            guard let open = Self.pidfdOpen else { return nil }
            let fd = open(pid, 0)
            return fd >= 0 ? fd : nil
        }
        _ = Glibc.kill(-group, SIGKILL)
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        for fd in descriptors {
            // A pidfd becomes readable when its process exits.
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = max(0, Int32((deadline - ContinuousClock.now).components.seconds * 1000))
            _ = poll(&entry, 1, left)
            close(fd)
        }
        process.waitUntilExit()
        self.output.withLock { $0 = nil }
    }

    /// `pidfd_open(2)` from the C library (not in Swift's Glibc module): a descriptor to wait on for any process's exit.
    private static let pidfdOpen: (@convention(c) (pid_t, UInt32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pidfd_open") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (pid_t, UInt32) -> Int32).self)
    }()

    /// Processes whose process group is `group` (from `/proc/<pid>/stat`).
    private static func processes(inGroup group: pid_t) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [group] }
        var members: [pid_t] = []
        for entry in entries {
            guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // After "(comm)": state, ppid, pgrp, ...
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 2, pid_t(fields[2]) == group { members.append(pid) }
        }
        return members
    }

    /// The first line written to `handle`, read on a Dispatch thread; nil at end of file or after `limit`.
    private static func firstLine(of handle: FileHandle, limit: Duration) async -> String? {
        let result = Mutex<String??>(nil)
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            var line = Data()
            var text: String?
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                line.append(chunk)
                if let end = line.firstIndex(of: 0x0A) {
                    text = String(decoding: line[..<end], as: UTF8.self)
                    break
                }
            }
            result.withLock { $0 = .some(text) }
            done.signal()
        }
        return await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            DispatchQueue.global().async {
                let seconds = Double(limit.components.seconds)
                _ = done.wait(timeout: .now() + seconds)
                continuation.resume(returning: result.withLock { $0 ?? nil })
            }
        }
    }

    /// Runs `body` with a started server; the server is stopped afterwards, whatever happens.
    public static func with<T>(exporting token: TestToken, _ body: (P11KitServer) async throws -> T) async throws -> T {
        let server = try P11KitServer(exporting: token)
        try await server.start()
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }
}
