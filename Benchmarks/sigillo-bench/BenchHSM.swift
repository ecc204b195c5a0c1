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

    @Flag(help: "Print JSON.")
    var json = false

    struct Row: Encodable {
        let algorithm: String
        let threads: Int
        let rawPerSecond: Double
        let wrapperPerSecond: Double
        var ratio: Double { self.wrapperPerSecond / self.rawPerSecond }

        enum CodingKeys: String, CodingKey { case algorithm, threads, rawPerSecond, wrapperPerSecond, ratio }
        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(self.algorithm, forKey: .algorithm)
            try container.encode(self.threads, forKey: .threads)
            try container.encode(self.rawPerSecond.rounded(), forKey: .rawPerSecond)
            try container.encode(self.wrapperPerSecond.rounded(), forKey: .wrapperPerSecond)
            try container.encode((self.ratio * 1000).rounded() / 1000, forKey: .ratio)
        }
    }

    func run() async throws {
        defer { if self.tokenURI == nil { BenchHSMRoot.remove() } }
        let threadCounts = self.threads.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let base = try self.tokenConfiguration()
        let setup = try Token.open(base)
        let cases: [(KeyAlgorithm, SignatureMechanism)] = [(.ecP256, .ecdsa(.sha256)), (.rsa2048, .rsaPKCS1v15(.sha256))]
        for (algorithm, _) in cases where try await !setup.containsKey(id: "bench-\(algorithm.rawValue)") {
            _ = try await setup.generateKeyPair(id: "bench-\(algorithm.rawValue)", algorithm: algorithm)
        }
        setup.close()

        var rows: [Row] = []
        for (algorithm, mechanism) in cases {
            for threads in threadCounts {
                var configuration = base
                configuration.sessions = threads
                let token = try Token.open(configuration)
                defer { token.close() }
                let id = "bench-\(algorithm.rawValue)"
                let handle = try await token.keyEntry(id: id).handle
                var raw: [Double] = []
                var wrapped: [Double] = []
                for round in 1...self.rounds {
                    self.progress("\(algorithm.rawValue) \(threads) thread(s) round \(round)/\(self.rounds): raw loop")
                    raw.append(try RawSignLoop.signaturesPerSecond(token: token, key: handle, mechanism: mechanism, threads: threads, seconds: self.seconds))
                    self.progress("\(algorithm.rawValue) \(threads) thread(s) round \(round)/\(self.rounds): Signer batch")
                    wrapped.append(try await self.wrapperLoop(token: token, id: id, mechanism: mechanism))
                }
                rows.append(Row(algorithm: algorithm.rawValue, threads: threads, rawPerSecond: Self.median(raw), wrapperPerSecond: Self.median(wrapped)))
            }
        }
        if self.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(rows), as: UTF8.self))
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
