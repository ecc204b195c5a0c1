import ArgumentParser
import Foundation
import PKCS11
import SigilloBenchSupport

@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sigillo-bench",
        abstract: "Benchmarks: the end-to-end server load, authorize, hashing, token scaling; the token micro-benchmark.",
        subcommands: [BenchAll.self, BenchE2E.self, BenchHashing.self, BenchScaling.self, BenchHSM.self],
        defaultSubcommand: BenchAll.self
    )
}

/// The token micro-benchmark: the raw `C_SignInit`+`C_Sign` loop against the wrapper's batch path, same token, same run.
struct BenchHSM: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hsm",
        abstract: "Raw PKCS#11 sign loop vs the Signer's batch path, on a fresh SoftHSM token (or the one given)."
    )

    @Option(help: "Seconds per measurement.")
    var seconds: Double = 3

    @Option(help: "Alternating rounds per configuration; the median is reported.")
    var rounds: Int = 3

    @Option(help: "Thread (session) counts, comma separated.")
    var threads: String = "1,2"

    @Option(help: "Digests per Signer.sign call.")
    var batch: Int = 256

    @Option(help: "PKCS#11 module; a temporary SoftHSM token is made unless --token-uri is given.")
    var module: String = "/usr/lib/softhsm/libsofthsm2.so"

    @Option(help: "Use this token instead (pkcs11: URI with pin-source).")
    var tokenURI: String?

    @Option(help: "Key algorithms, comma separated (ecdsa-p256, rsa-2048).")
    var algorithms: String = "ecdsa-p256,rsa-2048"

    @Flag(help: "Also through p11-kit's RPC: the same token exported by `p11-kit server` on a unix socket and reached with p11-kit-client.so, measured alternately with the direct module in the same run.")
    var rpc = false

    @Option(help: "p11-kit's client module for --rpc (default: p11-kit-client.so in pkg-config p11-kit-1's p11_module_path).")
    var clientModule: String?

    @Flag(help: "Print JSON.")
    var json = false

    struct Row: Encodable {
        let algorithm: String
        let threads: Int
        /// "direct" (the module in this process) or "p11-kit RPC".
        let path: String
        let rawPerSecond: Double
        let wrapperPerSecond: Double
        /// The direct path's raw rate in the same run, for the RPC rows.
        let directRawPerSecond: Double?
        var ratio: Double { self.wrapperPerSecond / self.rawPerSecond }
        var rpcRatio: Double? { self.directRawPerSecond.map { self.rawPerSecond / $0 } }

        enum CodingKeys: String, CodingKey { case algorithm, threads, path, rawPerSecond, wrapperPerSecond, ratio, rawVersusDirect }
        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(self.algorithm, forKey: .algorithm)
            try container.encode(self.threads, forKey: .threads)
            try container.encode(self.path, forKey: .path)
            try container.encode(self.rawPerSecond.rounded(), forKey: .rawPerSecond)
            try container.encode(self.wrapperPerSecond.rounded(), forKey: .wrapperPerSecond)
            try container.encode((self.ratio * 1000).rounded() / 1000, forKey: .ratio)
            try container.encodeIfPresent(self.rpcRatio.map { ($0 * 1000).rounded() / 1000 }, forKey: .rawVersusDirect)
        }
    }

    func run() async throws {
        defer { if self.tokenURI == nil { BenchHSMRoot.remove() } }
        let threadCounts = self.threads.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let base = try self.tokenConfiguration()
        let setup = try Token.open(base)
        let all: [(KeyAlgorithm, SignatureMechanism)] = [(.ecP256, .ecdsa(.sha256)), (.rsa2048, .rsaPKCS1v15(.sha256))]
        let wanted = Set(self.algorithms.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let cases = all.filter { wanted.contains($0.0.rawValue) }
        guard !cases.isEmpty else { throw ValidationError("--algorithms: none of \(self.algorithms) is known (ecdsa-p256, rsa-2048)") }
        for (algorithm, _) in cases where try await !setup.containsKey(id: "bench-\(algorithm.rawValue)") {
            _ = try await setup.generateKeyPair(id: "bench-\(algorithm.rawValue)", algorithm: algorithm)
        }
        setup.close()

        // The same token exported by `p11-kit server` (keys made above, before it starts), reached with the client module.
        var paths: [(name: String, configuration: TokenConfiguration)] = [("direct", base)]
        var exported: RPCExport?
        if self.rpc {
            let export = try RPCExport.start(module: base.modulePath, tokenLabel: base.tokenLabel)
            exported = export
            var remote = base
            remote.modulePath = try self.clientModule ?? RPCExport.clientModulePath()
            setenv("P11_KIT_SERVER_ADDRESS", export.address, 1)
            paths.append(("p11-kit RPC", remote))
        }
        defer { exported?.stop() }

        var rows: [Row] = []
        for (algorithm, mechanism) in cases {
            for threads in threadCounts {
                let id = "bench-\(algorithm.rawValue)"
                var tokens: [Token] = []
                defer { tokens.forEach { $0.close() } }
                for path in paths {
                    var configuration = path.configuration
                    configuration.sessions = threads
                    let token = try Token.open(configuration)
                    tokens.append(token)
                }
                var raw = Array(repeating: [Double](), count: paths.count)
                var wrapped = Array(repeating: [Double](), count: paths.count)
                for round in 1...self.rounds {
                    // The paths alternate within each round, so a slower minute hits both.
                    for (index, path) in paths.enumerated() {
                        let token = tokens[index]
                        self.progress("\(algorithm.rawValue) \(threads) thread(s) round \(round)/\(self.rounds) \(path.name): raw loop")
                        raw[index].append(try RawSignLoop.signaturesPerSecond(token: token, keyID: id, mechanism: mechanism, threads: threads, seconds: self.seconds))
                        self.progress("\(algorithm.rawValue) \(threads) thread(s) round \(round)/\(self.rounds) \(path.name): Signer batch")
                        wrapped[index].append(try await self.wrapperLoop(token: token, id: id, mechanism: mechanism))
                    }
                }
                let direct = Self.median(raw[0])
                for (index, path) in paths.enumerated() {
                    rows.append(Row(algorithm: algorithm.rawValue, threads: threads, path: path.name, rawPerSecond: Self.median(raw[index]),
                                    wrapperPerSecond: Self.median(wrapped[index]), directRawPerSecond: index == 0 ? nil : direct))
                }
            }
        }
        if self.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(rows), as: UTF8.self))
        } else if self.rpc {
            print("| key | threads | path | raw C_Sign loop (sig/s) | Signer batch of \(self.batch) (sig/s) | Signer / raw | raw / direct raw |")
            print("|---|---:|---|---:|---:|---:|---:|")
            for row in rows {
                let versus = row.rpcRatio.map { String(format: "%.3f", $0) } ?? "1"
                print("| \(row.algorithm) | \(row.threads) | \(row.path) | \(Int(row.rawPerSecond)) | \(Int(row.wrapperPerSecond)) | \(String(format: "%.3f", row.ratio)) | \(versus) |")
            }
        } else {
            print("| key | threads | raw C_Sign loop (sig/s) | Signer batch of \(self.batch) (sig/s) | ratio |")
            print("|---|---:|---:|---:|---:|")
            for row in rows {
                print("| \(row.algorithm) | \(row.threads) | \(Int(row.rawPerSecond)) | \(Int(row.wrapperPerSecond)) | \(String(format: "%.3f", row.ratio)) |")
            }
        }
    }

    func progress(_ text: String) {
        FileHandle.standardError.write(Data("… \(text)\n".utf8))
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// A fresh SoftHSM token in a temporary folder, unless `--token-uri` names one.
    func tokenConfiguration() throws -> TokenConfiguration {
        if let uri = self.tokenURI {
            return try TokenConfiguration(uri: uri, modulePath: self.module)
        }
        return try BenchHSMRoot.makeToken(label: "bench", module: self.module)
    }

    /// The wrapper: repeated `Signer.sign(digests:)` batches for the same duration.
    func wrapperLoop(token: Token, id: String, mechanism: SignatureMechanism) async throws -> Double {
        let signer = Signer(token: token)
        let digests = (0..<self.batch).map { index in (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index) } }
        let start = DispatchTime.now()
        let deadline = start.uptimeNanoseconds + UInt64(self.seconds * 1e9)
        var count = 0
        while DispatchTime.now().uptimeNanoseconds < deadline {
            count += try await signer.sign(digests: digests, credential: id, mechanism: mechanism).count
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        return Double(count) / elapsed
    }
}

/// `p11-kit server -f --provider <module> -n <socket> "pkcs11:token=<label>"` for `sigillo-bench hsm --rpc`: started in
/// its own process group (p11-kit forks a `p11-kit-remote` per client connection), ready once it printed its address
/// (after `listen`), stopped with its children.
final class RPCExport {
    let process: Process
    let output: Pipe
    let address: String

    private init(process: Process, output: Pipe, address: String) {
        self.process = process
        self.output = output
        self.address = address
    }

    static func start(module: String, tokenLabel: String) throws -> RPCExport {
        let socket = BenchHSMRoot.root.appendingPathComponent("p11.sock").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let uri = "pkcs11:token=" + (tokenLabel.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? tokenLabel)
        process.arguments = ["p11-kit", "server", "-f", "--provider", module, "-n", socket, uri]
        process.standardInput = FileHandle.nullDevice
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var line = Data()
        while !line.contains(0x0A) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { throw ValidationError("p11-kit server exited before listening (is the p11-kit package installed?)") }
            line.append(chunk)
        }
        guard String(decoding: line, as: UTF8.self).hasPrefix("P11_KIT_SERVER_ADDRESS=") else {
            process.terminate()
            throw ValidationError("p11-kit server printed \(String(decoding: line, as: UTF8.self))")
        }
        return RPCExport(process: process, output: output, address: "unix:path=\(socket)")
    }

    /// SIGTERM to the server and its `p11-kit-remote` children (one process group).
    func stop() {
        guard self.process.isRunning else { return }
        kill(-self.process.processIdentifier, SIGTERM)
        self.process.waitUntilExit()
    }

    /// `p11-kit-client.so` in the folder `pkg-config p11-kit-1 --variable p11_module_path` names.
    static func clientModulePath() throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["pkg-config", "p11-kit-1", "--variable", "p11_module_path"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let folder = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        process.waitUntilExit()
        let path = (folder.isEmpty ? "/usr/lib/x86_64-linux-gnu/pkcs11" : folder) + "/p11-kit-client.so"
        guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("no \(path): install p11-kit-modules or pass --client-module") }
        return path
    }
}
