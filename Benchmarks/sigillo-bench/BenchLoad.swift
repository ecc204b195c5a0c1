import Crypto
import Foundation
import Histogram
import PKCS11
import CSCClient
import CSCProtocol
import SigilloDomain
import SigilloMail
import SigilloPKI
import SigilloSQLite
import Synchronization

/// One client of the load: a holder's account and its own CSC client (one keep-alive TLS connection).
struct BenchClient: Sendable {
    let account: BenchAccount
    let csc: CSCClient
}

/// What a load phase does in its loop.
enum BenchMode: String, Codable, Sendable {
    /// authorize (password + OTP) then signHash, every iteration: the full flow.
    case flow
    /// signHash only, under SADs authorized before the timed window (`multisign` signatures each).
    case signOnly = "sign-only"
    /// authorize only (Argon2id + OTP + SAD insert).
    case authorize
}

/// The figures of one timed phase.
struct PhaseResult: Codable, Sendable {
    var algorithm: String
    var mode: BenchMode
    var hashesPerRequest: Int
    var clients: Int
    var seconds: Double
    /// HTTP requests completed (authorize and signHash each count).
    var requests: Int
    var signatures: Int
    var failures: Int
    var firstFailure: String?
    /// Signatures checked against the certificate's public key, and how many of those were wrong.
    var verified: Int
    var invalid: Int
    var signaturesPerSecond: Double
    var requestsPerSecond: Double
    /// Per iteration: authorize + signHash (flow), signHash (sign-only), authorize (authorize).
    var latency: LatencySummary
    var authorizeLatency: LatencySummary?
    var signHashLatency: LatencySummary?
    /// CPU cores used on average: the server process, and this (client) process.
    var serverCPU: Double
    var clientCPU: Double
    /// The raw 2-thread C_Sign loop of the same key, measured right before the phase, and signatures/s over it.
    var rawPerSecond: Double?
    var ratioToRaw: Double?
    /// Signatures per CPU-second of the server over the raw loop's signatures per CPU-second: how much of the
    /// server's CPU goes to the token's work. Holds up better than rates when other processes take CPU.
    var cpuEfficiency: Double?
    /// SADs authorized again inside the window because one was used up (sign-only).
    var reauthorizations: Int
}

/// One client's counts and histograms of a phase.
private struct ClientOutcome: Sendable {
    var total = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    var authorize = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    var signHash = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    var requests = 0
    var signatures = 0
    var failures = 0
    var firstFailure: String?
    var verified = 0
    var invalid = 0
    var reauthorizations = 0

    mutating func merge(_ other: ClientOutcome) {
        self.total.add(other.total)
        self.authorize.add(other.authorize)
        self.signHash.add(other.signHash)
        self.requests += other.requests
        self.signatures += other.signatures
        self.failures += other.failures
        self.firstFailure = self.firstFailure ?? other.firstFailure
        self.verified += other.verified
        self.invalid += other.invalid
        self.reauthorizations += other.reauthorizations
    }
}

enum BenchLoad {
    static let sha256OID = OID.sha256

    /// Logs every client in (one bearer token each, kept for the whole run).
    static func connect(_ accounts: [BenchAccount], server: BenchServer, clients: Int) async throws -> [BenchClient] {
        try await withThrowingTaskGroup(of: BenchClient.self) { group in
            for index in 0..<clients {
                let account = accounts[index % accounts.count]
                group.addTask {
                    // Spread over the nodes (one URL each), as a load balancer would.
                    let csc = try CSCClient(baseURL: server.baseURLs[index % server.baseURLs.count], trustRootsPEMFile: server.tlsCAFile)
                    try await csc.login(username: account.username, password: account.password)
                    return BenchClient(account: account, csc: csc)
                }
            }
            var result: [BenchClient] = []
            for try await client in group { result.append(client) }
            return result
        }
    }

    static func disconnect(_ clients: [BenchClient]) async {
        for client in clients { try? await client.csc.shutdown() }
    }

    /// `count` random messages and their SHA-256 digests (what a client signs).
    static func messages(_ count: Int) -> (messages: [[UInt8]], digests: [[UInt8]]) {
        let messages = (0..<count).map { _ in (0..<32).map { _ in UInt8.random(in: .min ... .max) } }
        return (messages, messages.map { Array(SHA256.hash(data: $0)) })
    }

    /// Runs one timed phase: every client loops until `seconds` have passed, then the figures are merged.
    ///
    /// - Parameters:
    ///   - verifyAll: check every signature (costly on the client); otherwise each client's first response.
    static func run(
        mode: BenchMode, hashesPerRequest: Int, clients: [BenchClient], seconds: Double, server: BenchServer,
        verifyAll: Bool, progress: BenchProgress
    ) async throws -> PhaseResult {
        let algorithm = clients[0].account.credential.keyAlgorithm
        // Sign-only: the SADs are authorized before the clock starts.
        var prepared: [(sad: String, left: Int)?] = Array(repeating: nil, count: clients.count)
        let batch = mode == .authorize ? 1 : hashesPerRequest
        let data = clients.map { _ in Self.messages(batch) }
        if mode == .signOnly {
            try await withThrowingTaskGroup(of: (Int, String, Int).self) { group in
                for (index, client) in clients.enumerated() {
                    group.addTask {
                        let (sad, left) = try await Self.authorizeForSigning(client, digests: data[index].digests)
                        return (index, sad, left)
                    }
                }
                for try await (index, sad, left) in group { prepared[index] = (sad, left) }
            }
        }
        let sads = prepared
        let ticker = progress.tick(seconds: seconds)
        let serverCPU = server.serverCPUSeconds()
        let clientCPU = cpuSeconds(pid: getpid()) ?? 0
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int(seconds * 1000))
        let outcome = try await withThrowingTaskGroup(of: ClientOutcome.self) { group in
            for (index, client) in clients.enumerated() {
                group.addTask {
                    await Self.loop(client: client, mode: mode, messages: data[index].messages, digests: data[index].digests,
                                    sad: sads[index], deadline: deadline, verifyAll: verifyAll)
                }
            }
            var merged = ClientOutcome()
            for try await outcome in group { merged.merge(outcome) }
            return merged
        }
        let elapsed = (ContinuousClock.now - start) / .seconds(1)
        let serverUsed = (server.serverCPUSeconds() - serverCPU) / elapsed
        let clientUsed = ((cpuSeconds(pid: getpid()) ?? 0) - clientCPU) / elapsed
        ticker.cancel()
        progress.done()
        return PhaseResult(
            algorithm: algorithm.rawValue, mode: mode, hashesPerRequest: batch, clients: clients.count, seconds: (elapsed * 100).rounded() / 100,
            requests: outcome.requests, signatures: outcome.signatures, failures: outcome.failures, firstFailure: outcome.firstFailure,
            verified: outcome.verified, invalid: outcome.invalid,
            signaturesPerSecond: (Double(outcome.signatures) / elapsed).rounded(), requestsPerSecond: (Double(outcome.requests) / elapsed).rounded(),
            latency: LatencySummary(outcome.total),
            authorizeLatency: mode == .flow ? LatencySummary(outcome.authorize) : nil,
            signHashLatency: mode == .flow ? LatencySummary(outcome.signHash) : nil,
            serverCPU: (serverUsed * 100).rounded() / 100, clientCPU: (clientUsed * 100).rounded() / 100,
            rawPerSecond: nil, ratioToRaw: nil, cpuEfficiency: nil, reauthorizations: outcome.reauthorizations)
    }

    /// A SAD for the credential's whole `multisign`, over `digests`; returns it and how many requests it covers.
    private static func authorizeForSigning(_ client: BenchClient, digests: [[UInt8]]) async throws -> (String, Int) {
        let multisign = client.account.credential.multisign
        let authorization = try await client.csc.authorize(
            credentialID: client.account.credential.id, hashes: digests, pin: client.account.password, otp: client.account.nextOTP(),
            numSignatures: multisign)
        return (authorization.sad, multisign / digests.count)
    }

    private static func micros(since start: ContinuousClock.Instant) -> UInt64 {
        let elapsed = ContinuousClock.now - start
        return UInt64(max(1, elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000))
    }

    private static func loop(
        client: BenchClient, mode: BenchMode, messages: [[UInt8]], digests: [[UInt8]], sad: (sad: String, left: Int)?,
        deadline: ContinuousClock.Instant, verifyAll: Bool
    ) async -> ClientOutcome {
        var outcome = ClientOutcome()
        let account = client.account
        let credentialID = account.credential.id
        var current = sad
        while ContinuousClock.now < deadline, outcome.failures < 20 {
            let start = ContinuousClock.now
            do {
                var signatures: [[UInt8]] = []
                switch mode {
                case .authorize:
                    _ = try await client.csc.authorize(credentialID: credentialID, hashes: digests, pin: account.password, otp: account.nextOTP())
                    outcome.requests += 1
                    _ = outcome.total.record(Self.micros(since: start))
                    continue
                case .flow:
                    let authorization = try await client.csc.authorize(credentialID: credentialID, hashes: digests, pin: account.password, otp: account.nextOTP())
                    _ = outcome.authorize.record(Self.micros(since: start))
                    outcome.requests += 1
                    let signing = ContinuousClock.now
                    signatures = try await client.csc.signHash(
                        credentialID: credentialID, sad: authorization.sad, hashes: digests, hashAlgorithmOID: Self.sha256OID, signAlgorithmOID: account.signAlgorithmOID)
                    _ = outcome.signHash.record(Self.micros(since: signing))
                case .signOnly:
                    if current == nil || current!.left == 0 {
                        let (fresh, left) = try await Self.authorizeForSigning(client, digests: digests)
                        current = (fresh, left)
                        outcome.reauthorizations += 1
                        continue
                    }
                    current!.left -= 1
                    signatures = try await client.csc.signHash(
                        credentialID: credentialID, sad: current!.sad, hashes: digests, hashAlgorithmOID: Self.sha256OID, signAlgorithmOID: account.signAlgorithmOID)
                }
                _ = outcome.total.record(Self.micros(since: start))
                outcome.requests += 1
                outcome.signatures += signatures.count
                if verifyAll || outcome.verified == 0 {
                    outcome.verified += signatures.count
                    if !account.verify(signatures, messages: messages) { outcome.invalid += signatures.count }
                }
            } catch {
                outcome.failures += 1
                if outcome.firstFailure == nil { outcome.firstFailure = "\(error)" }
            }
        }
        return outcome
    }
}

/// The bench's progress on standard error: a bar per timed phase on a terminal, a line per step otherwise.
final class BenchProgress: Sendable {
    let enabled: Bool
    private let bar = Mutex<ProgressBar?>(nil)

    init(enabled: Bool) {
        self.enabled = enabled
    }

    /// Announces a step.
    func step(_ text: String) {
        guard self.enabled else { return }
        Terminal.error("… \(text)")
    }

    /// A bar filling over `seconds` (redrawn by a ticking task the caller cancels).
    func tick(seconds: Double) -> Task<Void, Never> {
        guard self.enabled, isatty(STDERR_FILENO) == 1 else { return Task {} }
        let total = Int(seconds * 1000)
        let bar = ProgressBar(total: total, label: "  running", format: { String(format: "%.1f s", $0 / 1000) }, showRate: false)
        self.bar.withLock { $0 = bar }
        return Task {
            var done = 0
            while !Task.isCancelled, done < total {
                try? await Task.sleep(for: .milliseconds(200))
                bar.add(200)
                done += 200
            }
        }
    }

    func done() {
        self.bar.withLock { bar in
            bar?.finish()
            bar = nil
        }
    }
}
