import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import PKCS11
import SigilloDomain
import SigilloPKI
import SigilloServer
import SigilloTestSupport
import Synchronization
import Testing
import X509

/// Sigillo on a token reached over the network through p11-kit's RPC (`p11-kit server` exporting a SoftHSM token,
/// `p11-kit-client.so` in the server): signing end to end, then the token lost (the server SIGKILLed with its
/// per-client processes) and back, without restarting Sigillo.
@Suite("Server: the token over p11-kit RPC, lost and back")
struct P11KitTests {
    /// One generous limit for every wait on an event (a log line, a process exit): never a pause.
    static let limit: Duration = .seconds(120)

    @Test("a holder signs through the RPC; token lost → 503 temporarily_unavailable, not ready, SAD kept; token back → signs with that SAD")
    func signLoseAndRecover() async throws {
        let fixture = try TestToken.unopened()
        try await P11KitServer.with(exporting: fixture) { hsm in
            try await Self.withServer(on: hsm, directory: fixture.directory) { server in
                var account = try await server.activate(keyAlgorithm: .ecP256)
                let login = try #require(try await server.post("/csc/v1/auth/login", basic: (account.username, account.password)).json["access_token"] as? String)
                let publicKey = try #require(P256.Signing.PublicKey(try Certificate(derEncoded: account.credential.certificateDER).publicKey))
                func authorize(_ message: Data) async throws -> String {
                    let answer = try await server.post("/csc/v1/credentials/authorize", [
                        "credentialID": account.credential.id, "numSignatures": 1, "hash": [b64(Array(SHA256.hash(data: message)))],
                        "PIN": account.password, "OTP": await account.nextOTP(),
                    ], bearer: login)
                    return try #require(answer.json["SAD"] as? String, "\(answer.json)")
                }
                func signHash(_ message: Data, sad: String) async throws -> CSCResponse {
                    try await server.post("/csc/v1/signatures/signHash", [
                        "credentialID": account.credential.id, "SAD": sad, "hash": [b64(Array(SHA256.hash(data: message)))],
                        "hashAlgo": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2",
                    ], bearer: login)
                }
                func verifies(_ answer: CSCResponse, _ message: Data) throws -> Bool {
                    let signature = try #require((answer.json["signatures"] as? [String])?.first.flatMap { Data(base64Encoded: $0) })
                    return publicKey.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: signature), for: SHA256.hash(data: message))
                }

                // Signing through the RPC, verified against the holder's certificate.
                let first = Data("through the network".utf8)
                let signed = try await signHash(first, sad: try await authorize(first))
                #expect(signed.status == 200, "\(signed.json)")
                #expect(try verifies(signed, first))
                #expect(try await Self.ready(server) == 200)

                // The token vanishes (server and every p11-kit-remote SIGKILLed).
                let second = Data("while the token is away".utf8)
                let sad = try await authorize(second)
                await hsm.kill()
                for _ in 0..<2 {
                    let refused = try await signHash(second, sad: sad)
                    #expect(refused.status == 503, "\(refused.json)")
                    #expect(refused.error == "temporarily_unavailable")
                    #expect(try await Self.ready(server) == 503)
                }
                #expect(try await server.get("/health") == 200)
                // Other routes answer meanwhile, never a 500 (authorize made no token call here: 200; a 503 would be fine too).
                let during = try await server.post("/csc/v1/credentials/authorize", [
                    "credentialID": account.credential.id, "numSignatures": 1, "hash": [b64(Array(SHA256.hash(data: second)))],
                    "PIN": account.password, "OTP": await account.nextOTP(),
                ], bearer: login)
                #expect(during.status == 200 || (during.status == 503 && during.error == "temporarily_unavailable"), "\(during.status) \(during.json)")

                // Back: no restart, and the SAD the failed attempts used was refunded (one signature, still there).
                try await hsm.start()
                #expect(try await Self.ready(server) == 200)
                let recovered = try await signHash(second, sad: sad)
                #expect(recovered.status == 200, "\(recovered.json)")
                #expect(try verifies(recovered, second))
                let spent = try await signHash(second, sad: sad)
                #expect(spent.status == 400, "\(spent.json)")
            }
        }
    }

    @Test("sigillo serve with p11-kit-client.so: ca init and readiness through the RPC; not ready while the token is away, ready again after")
    func serveProcess() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: AdminCLITests.binary), "build the executable first: swift build")
        let fixture = try TestToken.unopened()
        let directory = fixture.directory
        try LiveServer.makeCertificates(in: directory.appendingPathComponent("certs"))
        try await P11KitServer.with(exporting: fixture) { hsm in
            let ports = try ReservedPorts(count: 3)
            let base = ports.base
            var environment = AdminCLITests.serveEnvironment(hsm.clientEnvironment(hsm.serverEnvironment), folder: directory,
                                                             module: P11KitServer.clientModulePath, token: hsm.tokenURI, pinFile: hsm.pinFile, sessions: 2)
            environment["SIGILLO_PORT"] = String(base)
            environment["SIGILLO_ADMIN_PORT"] = String(base + 1)
            environment["SIGILLO_PKI_PORT"] = String(base + 2)
            environment["SIGILLO_PKI_URL"] = "http://127.0.0.1:\(base + 2)"
            let initialized = try await runOffPool(AdminCLITests.binary, ["ca", "init", "--algorithm", "ecdsa-p256"], environment: environment)
            try #require(initialized.status == 0, "\(initialized.output)")

            ports.release()
            let serve = try LoggedProcess(AdminCLITests.binary, ["serve", "--log-level", "info"], environment: environment)
            defer { serve.kill() }
            try await serve.waitForLine(containing: "listening on 127.0.0.1:\(base)", limit: Self.limit)
            let certs = directory.appendingPathComponent("certs")
            let ready = { () async throws -> String in
                try await runOffPool("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "60", "--cacert", certs.appendingPathComponent("tls-ca.pem").path,
                                              "https://127.0.0.1:\(base)/health/ready"]).output
            }
            #expect(try await ready() == "200")
            await hsm.kill()
            #expect(try await ready() == "503")
            #expect(try await ready() == "503")
            try await hsm.start()
            #expect(try await ready() == "200")
            #expect(serve.isRunning)
            let status = await serve.terminate()
            #expect(status == 0, "\(serve.output)")
            #expect(!serve.output.contains(fixture.userPIN), "no PIN in the log")
        }
    }

    // MARK: Helpers

    static func ready(_ server: LiveServer) async throws -> UInt {
        let response = try await server.client.execute(HTTPClientRequest(url: server.baseURL + "/health/ready"), timeout: .seconds(60))
        return UInt(response.status.code)
    }

    /// An in-process server (`LiveServer.with`) on the exported token, opened through a p11-kit client module instance
    /// of its own: its own connection, so `P11_KIT_SERVER_ADDRESS` never has to stay set in this process.
    static func withServer<T: Sendable>(on hsm: P11KitServer, directory root: URL, _ body: @Sendable (LiveServer) async throws -> T) async throws -> T {
        let token = try hsm.openToken(sessions: 2)
        defer { token.close() }
        return try await LiveServer.with(token: token, in: root, body)
    }
}

extension LiveServer {
    /// The status of a GET.
    func get(_ path: String) async throws -> UInt {
        UInt(try await self.client.execute(HTTPClientRequest(url: self.baseURL + path), timeout: .seconds(60)).status.code)
    }
}

/// A child process whose stdout and stderr lines are collected; a test waits for a line, never for time.
final class LoggedProcess: @unchecked Sendable {
    private struct Waiter {
        let text: String
        let continuation: CheckedContinuation<Bool, Never>
    }
    private struct State {
        var lines: [String] = []
        var partial = Data()
        var closed = false
        var waiters: [UUID: Waiter] = [:]

        func has(_ text: String) -> Bool { self.lines.contains { $0.contains(text) } }
    }

    private let process = Process()
    private let state = Mutex(State())

    init(_ executable: String, _ arguments: [String], environment: [String: String]) throws {
        self.process.executableURL = URL(fileURLWithPath: executable)
        self.process.arguments = arguments
        self.process.environment = environment
        self.process.standardInput = FileHandle.nullDevice
        let pipe = Pipe()
        self.process.standardOutput = pipe
        self.process.standardError = pipe
        try self.process.run()
        let reader = pipe.fileHandleForReading
        Thread { [self] in
            while true {
                let chunk = reader.availableData
                self.append(chunk)
                if chunk.isEmpty { return }
            }
        }.start()
    }

    var isRunning: Bool { self.process.isRunning }

    /// Everything printed so far.
    var output: String { self.state.withLock { $0.lines.joined(separator: "\n") } }

    private func append(_ chunk: Data) {
        let ready: [(CheckedContinuation<Bool, Never>, Bool)] = self.state.withLock { state in
            if chunk.isEmpty {
                state.closed = true
            } else {
                state.partial.append(chunk)
                while let end = state.partial.firstIndex(of: 0x0A) {
                    state.lines.append(String(decoding: state.partial[state.partial.startIndex..<end], as: UTF8.self))
                    state.partial = Data(state.partial[(end + 1)...])
                }
            }
            var ready: [(CheckedContinuation<Bool, Never>, Bool)] = []
            for (id, waiter) in state.waiters {
                let found = state.has(waiter.text)
                if found || state.closed {
                    ready.append((waiter.continuation, found))
                    state.waiters[id] = nil
                }
            }
            return ready
        }
        for (continuation, found) in ready { continuation.resume(returning: found) }
    }

    /// Waits until a line containing `text` was printed.
    /// - Throws: when the process closed its output first, or after `limit`.
    func waitForLine(containing text: String, limit: Duration) async throws {
        let id = UUID()
        let found = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                    let now: Bool? = self.state.withLock { state in
                        if state.has(text) { return true }
                        if state.closed { return false }
                        state.waiters[id] = Waiter(text: text, continuation: continuation)
                        return nil
                    }
                    if let now { continuation.resume(returning: now) }
                }
            }
            group.addTask {
                // The overall limit: gives up the wait (resumes it with false) unless the line came first.
                try? await Task.sleep(for: limit)
                self.state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume(returning: false)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        guard found else {
            throw BackgroundProcessError(description: "no line with '\(text)' (limit \(limit)); output:\n\(self.output)")
        }
    }

    /// SIGTERM, then waits (off the pool) for the exit; returns the exit status.
    func terminate() async -> Int32 {
        self.process.terminate()
        let process = self.process
        return await withCheckedContinuation { continuation in
            Thread {
                process.waitUntilExit()
                continuation.resume(returning: process.terminationStatus)
            }.start()
        }
    }

    /// Kills the process if it still runs (the end of a failed test).
    func kill() {
        if self.process.isRunning {
            Glibc.kill(self.process.processIdentifier, SIGKILL)
            self.process.waitUntilExit()
        }
    }
}
