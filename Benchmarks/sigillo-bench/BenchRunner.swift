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
        if parts.contains(.scaling) {
            switch self.options.holderKeys {
            case .token: report.scaling = try await self.scaling()
            case .wrapped:
                let bench = BenchWrappedScaling(options: self.options, progress: self.progress)
                report.wrappedScalingReference = try await bench.tokenObjectReference()
                report.wrappedScaling = try await bench.run()
            }
        }
        report.machine.loadAfter = Self.load()
        let phases = (report.phases ?? []) + (report.authorize.map { [$0.phase] } ?? []) + (report.scaling ?? []).map(\.signHash)
        report.failures = phases.reduce(0) { $0 + $1.failures }
        report.invalidSignatures = phases.reduce(0) { $0 + $1.invalid } + (report.wrappedScaling ?? []).reduce(0) { $0 + $1.invalid } + (report.wrappedScalingReference?.invalid ?? 0)
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
        let server = try await BenchServer.make(label: "e2e", module: self.options.module, multisign: self.options.multisign,
                                                database: self.options.database, databasePasswordEnvironment: self.options.databasePasswordEnv,
                                                nodes: self.options.nodes, holderKeys: self.options.holderKeys, unwrappedKeyCache: self.options.unwrappedKeyCache)
        var accounts: [KeyAlgorithm: [BenchAccount]] = [:]
        for algorithm in algorithms {
            self.progress.step("activating \(self.options.clients) \(algorithm.rawValue) holders (HOTP tokens)")
            accounts[algorithm] = try await server.activateHolders(count: self.options.clients, algorithm: algorithm, prefix: String(algorithm.rawValue.prefix(2)))
        }
        var baseline: [BenchReport.RawRow] = []
        // The raw loop signs with a token object of each algorithm (the holders' keys may be wrapped: no token object).
        var rawKeys: [KeyAlgorithm: String] = [:]
        for algorithm in algorithms {
            rawKeys[algorithm] = "raw-\(algorithm.rawValue)"
            _ = try await server.token.generateKeyPair(id: rawKeys[algorithm]!, algorithm: algorithm)
        }
        for algorithm in algorithms {
            let keyID = rawKeys[algorithm]!
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
        self.progress.step("server pid(s) \(server.pids.map(String.init).joined(separator: ", ")) on \(server.baseURLs.joined(separator: ", "))")
        var phases: [PhaseResult] = []
        do {
            for algorithm in algorithms {
                let keyID = rawKeys[algorithm]!
                self.progress.step("\(self.options.clients) clients log in (\(algorithm.rawValue))")
                let clients = try await BenchLoad.connect(accounts[algorithm]!, server: server, clients: self.options.clients)
                let modes = self.options.modes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                for mode in [BenchMode.flow, .signOnly] where modes.contains(mode.rawValue) {
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
                if algorithm == algorithms[0], modes.contains(BenchMode.authorize.rawValue) {
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
        let mechanism: SignatureMechanism = algorithm.isRSA ? .rsaPKCS1v15(.sha256) : .ecdsa(.sha256)
        let seconds = self.options.rawSeconds
        var rates: [Double] = []
        var perCPU: [Double] = []
        for _ in 0..<rounds {
            let cpu = cpuSeconds(pid: getpid()) ?? 0
            let rate = try await offPool { try RawSignLoop.signaturesPerSecond(token: token, keyID: keyID, mechanism: mechanism, threads: threads, seconds: seconds) }
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
        let server = try await BenchServer.make(label: "scaling", module: self.options.module, multisign: self.options.multisign, holderKeys: .token)
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
