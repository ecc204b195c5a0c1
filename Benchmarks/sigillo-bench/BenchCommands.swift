import ArgumentParser
import Foundation
import PKCS11
import SigilloBenchSupport
import CSCClient
import CSCProtocol
import SigilloDomain
import SigilloMail
import SigilloPKI
import SigilloSQLite
import SigilloServer

/// Options shared by the end-to-end, hashing and scaling benchmarks.
struct BenchOptions: ParsableArguments {
    @Option(help: "Seconds per timed load phase.")
    var seconds: Double = 6

    @Option(help: "Concurrent clients: each its own holder, HOTP token and keep-alive TLS connection.")
    var clients: Int = 64

    @Option(help: "Key types, comma separated.")
    var keys: String = "ecdsa-p256,rsa-2048"

    @Option(help: "Hashes per request, comma separated.")
    var hashes: String = "1,16,64"

    @Option(help: "Load phases, comma separated: flow, sign-only, authorize (e.g. sign-only alone to profile the hot path).")
    var modes: String = "flow,sign-only,authorize"

    @Option(help: "multisign of the bench credentials: the signatures one SAD allows in the sign-only phase.")
    var multisign: Int = 6400

    @Option(help: "Seconds per raw-loop measurement (raw C_Sign and Argon2id; the median of 3 is kept).")
    var rawSeconds: Double = 2

    @Option(name: .customLong("hash-file-mib"), help: "Size of the large file hashed, in MiB.")
    var hashFileMiB: Int = 1024

    @Option(help: "Number of small (64 KiB) files hashed.")
    var smallFiles: Int = 1000

    @Option(help: "Key pairs in the token for the scaling measurement, comma separated (SoftHSM's file store makes generation slow past a few thousand: 1,000 take ~35 s, 2,000 ~2 min, 10,000 far longer).")
    var scaling: String = "10,1000,2000"

    @Option(name: .customLong("holder-keys"), help: "Where holder keys are kept: wrapped (under the KEK, in the database) or token (token objects). The scaling measurement differs: see BENCHMARKS.md.")
    var holderKeys: HolderKeyStorage = .wrapped

    @Option(help: "Unwrapped holder keys each HSM session keeps (wrapped keys).")
    var unwrappedKeyCache: Int = TokenConfiguration.defaultUnwrappedKeyCacheSize

    @Option(help: "PKCS#11 module (SoftHSM: a temporary token is made for the run).")
    var module: String = "/usr/lib/softhsm/libsofthsm2.so"

    @Option(help: "The server's database: a PostgreSQL URL (postgres://user@host:port/db, an empty database) instead of a new SQLite file.")
    var database: String?

    @Option(help: "The environment variable holding the PostgreSQL password (given to the server too).")
    var databasePasswordEnv: String?

    @Option(help: "sigillo serve processes sharing the database and token, clients spread over them (more than one needs --database).")
    var nodes: Int = 1

    @Flag(help: "Check every signature against the certificate (costs client CPU); by default each client's first response per phase.")
    var verifyAll = false

    @Flag(help: "Print one JSON document on standard output instead of the tables.")
    var json = false

    @Option(help: "Also write the Markdown tables to this file.")
    var output: String?

    @Flag(help: "No progress on standard error.")
    var quiet = false

    var keyAlgorithms: [KeyAlgorithm] {
        get throws {
            try self.keys.split(separator: ",").map { name in
                guard let algorithm = KeyAlgorithm(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("unknown key type \(name)")
                }
                return algorithm
            }
        }
    }

    static func integers(_ text: String) -> [Int] {
        text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }
}

/// Everything one run measured; the parts not run are nil.
struct BenchReport: Codable, Sendable {
    struct Machine: Codable, Sendable {
        var cpus: Int
        var cpuModel: String
        var kernel: String
        var loadBefore: String
        var loadAfter: String?
        var date: String
    }
    struct RawRow: Codable, Sendable {
        var algorithm: String
        var threads: Int
        var signaturesPerSecond: Double
        /// Signatures per CPU-second the loop used (this process's CPU time): the token's cost per signature.
        var signaturesPerCPUSecond: Double
    }
    struct Authorize: Codable, Sendable {
        var phase: PhaseResult
        var argon2idVerifyPerSecond1Thread: Double
        var argon2idVerifyPerSecond2Threads: Double
        /// authorize/s over the raw 2-thread Argon2id verification rate.
        var ratio: Double
    }
    struct HashingRow: Codable, Sendable {
        var data: String
        var threads: Int
        var fileHasherMiBPerSecond: Double
        var opensslMiBPerSecond: Double
        var ratio: Double
    }
    struct ScalingRow: Codable, Sendable {
        var keyPairs: Int
        var generationSeconds: Double
        var serverStartSeconds: Double
        var rawPerSecond1Thread: Double
        var signHash: PhaseResult
    }

    var machine: Machine
    var clients: Int
    var secondsPerPhase: Double
    var multisign: Int
    var baseline: [RawRow]?
    var phases: [PhaseResult]?
    var authorize: Authorize?
    var hashing: [HashingRow]?
    var scaling: [ScalingRow]?
    struct WrappedScalingRow: Codable, Sendable {
        var keys: Int
        /// Keys generated for this row (the previous rows' are kept), in `creationSeconds`.
        var created: Int
        var creationSeconds: Double
        var creationPerSecond: Double
        var cachePerSession: Int
        var sessions: Int
        var signatures: Int
        var signaturesPerSecond: Double
        /// Every signature; then the cache hits and the misses (unwrap + signature) apart.
        var latency: LatencySummary
        var hitRatio: Double
        var hit: LatencySummary
        var miss: LatencySummary
        var hitMeanMs: Double
        var missMeanMs: Double
        var invalid: Int
    }
    var wrappedScaling: [WrappedScalingRow]?
    struct WrappedScalingReference: Codable, Sendable {
        var signatures: Int
        var signaturesPerSecond: Double
        var latency: LatencySummary
        var invalid: Int
    }
    var wrappedScalingReference: WrappedScalingReference?
    /// Requests that failed or signatures that did not verify, over every phase.
    var failures: Int = 0
    var invalidSignatures: Int = 0
}

/// What a bench command runs.
struct BenchParts: OptionSet {
    let rawValue: Int
    static let e2e = BenchParts(rawValue: 1)
    static let hashing = BenchParts(rawValue: 2)
    static let scaling = BenchParts(rawValue: 4)
    static let all: BenchParts = [.e2e, .hashing, .scaling]
}

struct BenchAll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all",
        abstract: "The whole benchmark: end-to-end load and authorize, client hashing, token scaling (the default).")
    @OptionGroup var options: BenchOptions
    func run() async throws { try await BenchRunner(options: self.options).run(.all) }
}

struct BenchE2E: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e",
        abstract: "Raw C_Sign baseline, then N clients over TLS: full flow, signHash only, authorize only.")
    @OptionGroup var options: BenchOptions
    func run() async throws { try await BenchRunner(options: self.options).run(.e2e) }
}

struct BenchHashing: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hashing",
        abstract: "The client's FileHasher against `openssl dgst -sha256` on a large file and on many small ones.")
    @OptionGroup var options: BenchOptions
    func run() async throws { try await BenchRunner(options: self.options).run(.hashing) }
}

struct BenchScaling: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "signHash latency with more and more key pairs in the token.")
    @OptionGroup var options: BenchOptions
    func run() async throws { try await BenchRunner(options: self.options).run(.scaling) }
}

extension HolderKeyStorage: ExpressibleByArgument {}
