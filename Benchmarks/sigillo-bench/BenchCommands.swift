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

    @Option(help: "PKCS#11 module (SoftHSM: a temporary token is made for the run).")
    var module: String = "/usr/lib/softhsm/libsofthsm2.so"

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

struct BenchRunner {
    let options: BenchOptions
    let progress: BenchProgress

    init(options: BenchOptions) {
        self.options = options
        self.progress = BenchProgress(enabled: !options.quiet)
    }

    func run(_ parts: BenchParts) async throws {
        defer { BenchHSMRoot.remove() }
        var report = BenchReport(machine: Self.machine(), clients: self.options.clients, secondsPerPhase: self.options.seconds, multisign: self.options.multisign)
        if parts.contains(.e2e) { try await self.endToEnd(into: &report) }
        if parts.contains(.hashing) { report.hashing = try await self.hashing() }
        if parts.contains(.scaling) { report.scaling = try await self.scaling() }
        report.machine.loadAfter = Self.load()
        let phases = (report.phases ?? []) + (report.authorize.map { [$0.phase] } ?? []) + (report.scaling ?? []).map(\.signHash)
        report.failures = phases.reduce(0) { $0 + $1.failures }
        report.invalidSignatures = phases.reduce(0) { $0 + $1.invalid }
        let markdown = BenchTables.markdown(report)
        if let output = self.options.output { try markdown.write(toFile: output, atomically: true, encoding: .utf8) }
        if self.options.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(markdown, terminator: "")
        }
        if report.failures > 0 || report.invalidSignatures > 0 {
            Terminal.error("bench: \(report.failures) failed request(s), \(report.invalidSignatures) invalid signature(s)")
            throw ExitCode(1)
        }
    }

    // MARK: End to end

    func endToEnd(into report: inout BenchReport) async throws {
        let algorithms = try self.options.keyAlgorithms
        let batches = BenchOptions.integers(self.options.hashes)
        self.progress.step("making a token, CA, TLS certificates and database")
        let server = try await BenchServer.make(label: "e2e", module: self.options.module, multisign: self.options.multisign)
        var accounts: [KeyAlgorithm: [BenchAccount]] = [:]
        for algorithm in algorithms {
            self.progress.step("activating \(self.options.clients) \(algorithm.rawValue) holders (HOTP tokens)")
            accounts[algorithm] = try await server.activateHolders(count: self.options.clients, algorithm: algorithm, prefix: String(algorithm.rawValue.prefix(2)))
        }
        var baseline: [BenchReport.RawRow] = []
        for algorithm in algorithms {
            let keyID = accounts[algorithm]![0].credential.tokenKeyID
            for threads in [1, 2] {
                self.progress.step("raw C_SignInit+C_Sign loop, \(algorithm.rawValue), \(threads) thread(s)")
                let rate = try await self.rawRate(token: server.token, keyID: keyID, algorithm: algorithm, threads: threads)
                baseline.append(.init(algorithm: algorithm.rawValue, threads: threads, signaturesPerSecond: rate.perSecond.rounded(),
                                      signaturesPerCPUSecond: rate.perCPUSecond.rounded()))
            }
        }
        report.baseline = baseline
        self.progress.step("starting the server (sigillo serve, child process)")
        try await server.start()
        self.progress.step("server pid \(server.pid ?? 0) on \(server.baseURL)")
        var phases: [PhaseResult] = []
        do {
            for algorithm in algorithms {
                let keyID = accounts[algorithm]![0].credential.tokenKeyID
                self.progress.step("\(self.options.clients) clients log in (\(algorithm.rawValue))")
                let clients = try await BenchLoad.connect(accounts[algorithm]!, server: server, clients: self.options.clients)
                for mode in [BenchMode.flow, .signOnly] {
                    for batch in batches {
                        // The raw 2-thread loop again right before the phase (server idle): other processes' load drifts.
                        self.progress.step("raw loop, 2 threads, then \(algorithm.rawValue) \(mode.rawValue), \(batch) hash(es)/request, \(clients.count) clients")
                        let raw = try await self.rawRate(token: server.token, keyID: keyID, algorithm: algorithm, threads: 2, rounds: 1)
                        var phase = try await BenchLoad.run(mode: mode, hashesPerRequest: batch, clients: clients, seconds: self.options.seconds,
                                                            server: server, verifyAll: self.options.verifyAll, progress: self.progress)
                        phase.rawPerSecond = raw.perSecond.rounded()
                        phase.ratioToRaw = ((phase.signaturesPerSecond / raw.perSecond) * 1000).rounded() / 1000
                        if phase.serverCPU > 0 {
                            phase.cpuEfficiency = ((phase.signaturesPerSecond / phase.serverCPU / raw.perCPUSecond) * 1000).rounded() / 1000
                        }
                        phases.append(phase)
                    }
                }
                if algorithm == algorithms[0] {
                    self.progress.step("\(algorithm.rawValue) authorize only (Argon2id + OTP), \(clients.count) clients")
                    let phase = try await BenchLoad.run(mode: .authorize, hashesPerRequest: 1, clients: clients, seconds: self.options.seconds,
                                                        server: server, verifyAll: false, progress: self.progress)
                    self.progress.step("raw Argon2id verification loop, 1 and 2 threads")
                    let one = try await self.argon2Rate(threads: 1)
                    let two = try await self.argon2Rate(threads: 2)
                    report.authorize = .init(phase: phase, argon2idVerifyPerSecond1Thread: one.rounded(), argon2idVerifyPerSecond2Threads: two.rounded(),
                                             ratio: ((phase.requestsPerSecond / two) * 1000).rounded() / 1000)
                }
                await BenchLoad.disconnect(clients)
            }
        } catch {
            await server.close()
            throw error
        }
        report.phases = phases
        await server.close()
    }

    /// The raw loop's signatures per second and per CPU-second (medians of `rounds` measurements).
    func rawRate(token: Token, keyID: String, algorithm: KeyAlgorithm, threads: Int, rounds: Int = 3) async throws -> (perSecond: Double, perCPUSecond: Double) {
        let handle = try await token.keyEntry(id: keyID).handle
        let mechanism: SignatureMechanism = algorithm.isRSA ? .rsaPKCS1v15(.sha256) : .ecdsa(.sha256)
        let seconds = self.options.rawSeconds
        var rates: [Double] = []
        var perCPU: [Double] = []
        for _ in 0..<rounds {
            let cpu = cpuSeconds(pid: getpid()) ?? 0
            let rate = try await offPool { try RawSignLoop.signaturesPerSecond(token: token, key: handle, mechanism: mechanism, threads: threads, seconds: seconds) }
            let used = (cpuSeconds(pid: getpid()) ?? 0) - cpu
            rates.append(rate)
            perCPU.append(used > 0 ? rate * seconds / used : rate)
        }
        return (BenchHSM.median(rates), BenchHSM.median(perCPU))
    }

    /// Argon2id verifications per second (the server's parameters), median of three.
    func argon2Rate(threads: Int) async throws -> Double {
        let hasher = PasswordHasher()
        let password = "bench " + UUID().uuidString
        let encoded = try hasher.hash(password)
        let seconds = self.options.rawSeconds
        var rates: [Double] = []
        for _ in 0..<3 {
            rates.append(try await offPool {
                ThreadLoop.stepsPerSecond(threads: threads, seconds: seconds) { (step: { hasher.verify(password, encoded: encoded) }, finish: {}) }
            })
        }
        return BenchHSM.median(rates)
    }

    // MARK: Hashing

    func hashing() async throws -> [BenchReport.HashingRow] {
        let folder = BenchHSMRoot.root.appendingPathComponent("hashing")
        let small = folder.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: small, withIntermediateDirectories: true)
        let big = folder.appendingPathComponent("large.bin").path
        let megabytes = self.options.hashFileMiB
        let count = self.options.smallFiles
        self.progress.step("writing \(megabytes) MiB and \(count) files of 64 KiB")
        let smallFiles = try await offPool { () throws -> [String] in
            var block = [UInt8](repeating: 0, count: 1 << 20)
            for index in block.indices { block[index] = UInt8.random(in: .min ... .max) }
            _ = FileManager.default.createFile(atPath: big, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: big))
            for chunk in 0..<megabytes {
                block[0] = UInt8(truncatingIfNeeded: chunk)
                block[1] = UInt8(truncatingIfNeeded: chunk >> 8)
                try handle.write(contentsOf: block)
            }
            try handle.close()
            return try (0..<count).map { index in
                let path = small.appendingPathComponent(String(format: "f%05d.bin", index)).path
                block[0] = UInt8(truncatingIfNeeded: index)
                block[1] = UInt8(truncatingIfNeeded: index >> 8)
                try Data(block[0..<(64 << 10)]).write(to: URL(fileURLWithPath: path))
                return path
            }
        }
        defer { try? FileManager.default.removeItem(at: folder) }
        // Warm the page cache: both sides read from memory.
        _ = try await FileHasher(parallelism: 2).hash(files: [big] + smallFiles)
        let bigMiB = Double(megabytes)
        let smallMiB = Double(count) / 16
        var rows: [BenchReport.HashingRow] = []
        for (label, files, mebibytes, threadCounts) in [("1 file of \(megabytes) MiB", [big], bigMiB, [1]), ("\(count) files of 64 KiB", smallFiles, smallMiB, [1, 2])] {
            for threads in threadCounts {
                self.progress.step("hashing \(label), \(threads) thread(s): FileHasher and openssl dgst -sha256")
                var ours: [Double] = []
                var theirs: [Double] = []
                for _ in 0..<3 {
                    let start = ContinuousClock.now
                    _ = try await FileHasher(parallelism: threads).hash(files: files)
                    ours.append(mebibytes / ((ContinuousClock.now - start) / .seconds(1)))
                    let seconds = try await Self.openssl(files: files, processes: threads)
                    theirs.append(mebibytes / seconds)
                }
                let fileHasher = BenchHSM.median(ours)
                let openssl = BenchHSM.median(theirs)
                rows.append(.init(data: label, threads: threads, fileHasherMiBPerSecond: fileHasher.rounded(), opensslMiBPerSecond: openssl.rounded(),
                                  ratio: ((fileHasher / openssl) * 1000).rounded() / 1000))
            }
        }
        return rows
    }

    /// Seconds `openssl dgst -sha256` takes on `files`, split over `processes` processes running at once.
    static func openssl(files: [String], processes: Int) async throws -> Double {
        try await offPool {
            let start = ContinuousClock.now
            let share = (files.count + processes - 1) / processes
            let running = try stride(from: 0, to: files.count, by: share).map { first -> Process in
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
                process.arguments = ["dgst", "-sha256"] + files[first..<min(files.count, first + share)]
                process.standardOutput = FileHandle.nullDevice
                try process.run()
                return process
            }
            for process in running {
                process.waitUntilExit()
                guard process.terminationStatus == 0 else { throw ConfigurationError("openssl dgst failed") }
            }
            return (ContinuousClock.now - start) / .seconds(1)
        }
    }

    // MARK: Scaling

    func scaling() async throws -> [BenchReport.ScalingRow] {
        let counts = BenchOptions.integers(self.options.scaling).sorted()
        guard !counts.isEmpty else { return [] }
        self.progress.step("scaling: a fresh token with one ECDSA P-256 holder")
        let server = try await BenchServer.make(label: "scaling", module: self.options.module, multisign: self.options.multisign)
        var rows: [BenchReport.ScalingRow] = []
        do {
            let account = try await server.activateHolders(count: 1, algorithm: .ecP256, prefix: "sc")[0]
            var present = 2  // the CA's key pair and the holder's
            var padding = 0
            for count in counts {
                let target = max(count, present)
                self.progress.step("scaling: generating \(target - present) key pairs (to \(target) in the token)")
                let start = ContinuousClock.now
                // One at a time, retried: SoftHSM now and then fails overlapping generations (see activateHolders).
                for index in padding..<(padding + target - present) {
                    _ = try await retrying { try await server.token.generateKeyPair(id: "pad-\(index)-\(UUID().uuidString.prefix(8))", algorithm: .ecP256) }
                }
                let generation = (ContinuousClock.now - start) / .seconds(1)
                padding += target - present
                present = target
                self.progress.step("scaling: \(target) key pairs: raw loop, server start, signHash latency (1 client)")
                let raw = try await self.rawRate(token: server.token, keyID: account.credential.tokenKeyID, algorithm: .ecP256, threads: 1).perSecond
                let started = ContinuousClock.now
                try await server.start()
                let startup = (ContinuousClock.now - started) / .seconds(1)
                let clients = try await BenchLoad.connect([account], server: server, clients: 1)
                let phase = try await BenchLoad.run(mode: .signOnly, hashesPerRequest: 1, clients: clients, seconds: self.options.seconds,
                                                    server: server, verifyAll: self.options.verifyAll, progress: self.progress)
                await BenchLoad.disconnect(clients)
                await server.stop()
                rows.append(.init(keyPairs: target, generationSeconds: (generation * 10).rounded() / 10, serverStartSeconds: (startup * 100).rounded() / 100,
                                  rawPerSecond1Thread: raw.rounded(), signHash: phase))
            }
        } catch {
            await server.close()
            throw error
        }
        await server.close()
        return rows
    }

    // MARK: Machine

    static func machine() -> BenchReport.Machine {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }.map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown"
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return .init(cpus: ProcessInfo.processInfo.activeProcessorCount, cpuModel: model, kernel: release, loadBefore: self.load(), loadAfter: nil,
                     date: ISO8601DateFormatter().string(from: Date()))
    }

    static func load() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "").split(separator: " ").prefix(3).joined(separator: " ")
    }
}

/// The report as Markdown tables (what BENCHMARKS.md shows).
enum BenchTables {
    static func markdown(_ report: BenchReport) -> String {
        var out = "Machine: \(report.machine.cpus) CPU (\(report.machine.cpuModel)), Linux \(report.machine.kernel), \(report.machine.date); "
        out += "load average before \(report.machine.loadBefore), after \(report.machine.loadAfter ?? "?").\n"
        out += "\(report.clients) clients, \(Self.number(report.secondsPerPhase)) s per phase, multisign \(report.multisign).\n\n"
        if let baseline = report.baseline {
            out += "### Raw PKCS#11 loop (C_SignInit + C_Sign, cached handle, same token)\n\n| key | threads | signatures/s | per CPU-second |\n|---|---:|---:|---:|\n"
            for row in baseline { out += "| \(row.algorithm) | \(row.threads) | \(Int(row.signaturesPerSecond)) | \(Int(row.signaturesPerCPUSecond)) |\n" }
            out += "\n"
        }
        if let phases = report.phases {
            out += "### End to end over TLS (keep-alive), server in its own process\n\n"
            out += "| key | phase | hashes/req | sig/s | req/s | p50 ms | p90 ms | p99 ms | max ms | server CPU | client CPU | raw 2-thread sig/s | ratio | CPU efficiency |\n"
            out += "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            for phase in phases { out += Self.row(phase) }
            out += "\nflow = authorize (password + OTP) then signHash each iteration (latency of the pair); sign-only = signHash under SADs authorized beforehand. "
            out += "CPU in cores (of \(report.machine.cpus)). Raw 2-thread: the raw loop measured right before the phase; ratio = sig/s over it. "
            out += "CPU efficiency = signatures per server CPU-second over the raw loop's signatures per CPU-second. "
            out += "Failures: \(report.failures), invalid signatures: \(report.invalidSignatures).\n\n"
        }
        if let authorize = report.authorize {
            let phase = authorize.phase
            out += "### authorize alone (Argon2id + HOTP + SAD)\n\n"
            out += "| authorize/s | p50 ms | p99 ms | server CPU | Argon2id verify/s, 1 thread | 2 threads | ratio to 2 threads |\n|---:|---:|---:|---:|---:|---:|---:|\n"
            out += "| \(Int(phase.requestsPerSecond)) | \(Self.number(phase.latency.p50)) | \(Self.number(phase.latency.p99)) | \(Self.number(phase.serverCPU)) | "
            out += "\(Int(authorize.argon2idVerifyPerSecond1Thread)) | \(Int(authorize.argon2idVerifyPerSecond2Threads)) | \(Self.number(authorize.ratio)) |\n\n"
        }
        if let hashing = report.hashing {
            out += "### Client hashing: FileHasher vs openssl dgst -sha256 (page cache warm)\n\n"
            out += "| data | threads | FileHasher MiB/s | openssl MiB/s | ratio |\n|---|---:|---:|---:|---:|\n"
            for row in hashing {
                out += "| \(row.data) | \(row.threads) | \(Int(row.fileHasherMiBPerSecond)) | \(Int(row.opensslMiBPerSecond)) | \(Self.number(row.ratio)) |\n"
            }
            out += "\n"
        }
        if let scaling = report.scaling {
            out += "### Scaling in key pairs (ECDSA P-256, signHash 1 hash/request, 1 client)\n\n"
            out += "| key pairs in token | generation s | server start s | raw C_Sign/s (1 thread) | sig/s | p50 ms | p99 ms | max ms |\n"
            out += "|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            for row in scaling {
                let latency = row.signHash.latency
                out += "| \(row.keyPairs) | \(Self.number(row.generationSeconds)) | \(Self.number(row.serverStartSeconds)) | \(Int(row.rawPerSecond1Thread)) | "
                out += "\(Int(row.signHash.signaturesPerSecond)) | \(Self.number(latency.p50)) | \(Self.number(latency.p99)) | \(Self.number(latency.max)) |\n"
            }
            out += "\n"
        }
        return out
    }

    static func row(_ phase: PhaseResult) -> String {
        let latency = phase.latency
        let ratio = phase.ratioToRaw.map(Self.number) ?? "–"
        return "| \(phase.algorithm) | \(phase.mode.rawValue) | \(phase.hashesPerRequest) | \(Int(phase.signaturesPerSecond)) | \(Int(phase.requestsPerSecond)) | "
            + "\(Self.number(latency.p50)) | \(Self.number(latency.p90)) | \(Self.number(latency.p99)) | \(Self.number(latency.max)) | "
            + "\(Self.number(phase.serverCPU)) | \(Self.number(phase.clientCPU)) | \(phase.rawPerSecond.map { String(Int($0)) } ?? "–") | \(ratio) | "
            + "\(phase.cpuEfficiency.map(Self.number) ?? "–") |\n"
    }

    static func number(_ value: Double) -> String {
        value >= 100 ? String(Int(value.rounded())) : String(format: value >= 10 ? "%.1f" : "%.2f", value)
    }
}
