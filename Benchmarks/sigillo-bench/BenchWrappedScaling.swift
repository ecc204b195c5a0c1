import Crypto
import Foundation
import Histogram
import PKCS11

/// Issue 13's scaling measurement: holder keys wrapped under the KEK, not token objects.
///
/// One fresh token with its KEK, opened with a session per core and `--unwrapped-key-cache` unwrapped keys per session.
/// At each scale, wrapped ECDSA P-256 key pairs are added until there are that many (generated as session objects,
/// wrapped, bound, destroyed: what an activation asks of the token), timed; then one client signs one digest at a time
/// for `--seconds`, each time with a credential chosen uniformly at random among all of them, through the `Signer` (the
/// server's signing path below the HTTP layer and the credential's row read). Each signature is classed as a cache hit
/// or a miss (an unwrap: the binding MAC and `C_UnwrapKey` before the signature) by the token's counters.
struct BenchWrappedScaling {
    let options: BenchOptions
    let progress: BenchProgress

    /// The same loop on one token-object key pair (its handle cached: what every signature costs with `holderKeys:
    /// token`), as the reference the wrapped rows are read against.
    func tokenObjectReference() async throws -> BenchReport.WrappedScalingReference {
        self.progress.step("scaling (wrapped keys): the reference, one token-object key, for \(self.options.seconds) s (1 client)")
        let configuration = try BenchHSMRoot.makeToken(label: "scaling-reference", module: self.options.module, sessions: ProcessInfo.processInfo.activeProcessorCount)
        let token = try Token.open(configuration)
        defer { token.close() }
        let publicKey = try await token.generateKeyPair(id: "reference", algorithm: .ecP256)
        let signer = Signer(token: token)
        let digest = Array(SHA256.hash(data: Data("bench".utf8)))
        for _ in 0..<2_000 { _ = try await signer.sign(digests: [digest], credential: "reference", mechanism: .ecdsa(.sha256)) }
        var all = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        var invalid = 0
        let started = ContinuousClock.now
        let end = started + .seconds(self.options.seconds)
        while ContinuousClock.now < end {
            let t0 = ContinuousClock.now
            let signature = try await signer.sign(digests: [digest], credential: "reference", mechanism: .ecdsa(.sha256))[0]
            all.record(UInt64(max(1, ((ContinuousClock.now - t0) / .microseconds(1)).rounded())))
            if all.totalCount % 1000 == 1 {
                let key = try P256.Signing.PublicKey(derRepresentation: publicKey)
                if !key.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: signature), for: SHA256.hash(data: Data("bench".utf8))) { invalid += 1 }
            }
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        return .init(signatures: Int(all.totalCount), signaturesPerSecond: (Double(all.totalCount) / seconds).rounded(), latency: LatencySummary(all), invalid: invalid)
    }

    func run() async throws -> [BenchReport.WrappedScalingRow] {
        let counts = BenchOptions.integers(self.options.scaling).sorted()
        guard let largest = counts.last else { return [] }
        self.progress.step("scaling (wrapped keys): a fresh token and its KEK")
        var configuration = try BenchHSMRoot.makeToken(label: "scaling-wrapped", module: self.options.module, sessions: ProcessInfo.processInfo.activeProcessorCount)
        configuration.unwrappedKeyCacheSize = self.options.unwrappedKeyCache
        let token = try Token.open(configuration)
        defer { token.close() }
        try await token.createKEK()
        let signer = Signer(token: token)
        let keys = WrappedKeyTable(capacity: largest)
        var rows: [BenchReport.WrappedScalingRow] = []
        for count in counts {
            let start = ContinuousClock.now
            let added = count - keys.count
            self.progress.step("scaling (wrapped keys): generating \(added) wrapped key pairs (to \(count))")
            try await self.generate(upTo: count, into: keys, token: token)
            let creation = (ContinuousClock.now - start) / .seconds(1)
            self.progress.step("scaling (wrapped keys): \(count) keys, signing with keys chosen at random for \(self.options.seconds) s (1 client)")
            var row = try await self.measure(count: count, keys: keys, signer: signer, token: token)
            row.created = added
            row.creationSeconds = (creation * 10).rounded() / 10
            row.creationPerSecond = added > 0 && creation > 0 ? (Double(added) / creation).rounded() : 0
            rows.append(row)
        }
        return rows
    }

    /// Adds wrapped keys `h-<index>` until the table holds `count`, four generations in flight per session.
    private func generate(upTo count: Int, into keys: WrappedKeyTable, token: Token) async throws {
        let window = 4 * token.sessionCount
        var next = keys.count
        var lastReport = ContinuousClock.now
        try await withThrowingTaskGroup(of: (Int, WrappedKey).self) { group in
            func add(_ index: Int) {
                group.addTask { (index, try await retrying { try await token.generateWrappedKeyPair(credential: "h-\(index)", algorithm: .ecP256) }) }
            }
            while next < count && next - keys.count < window {
                add(next)
                next += 1
            }
            while let (index, key) = try await group.next() {
                keys.set(index, key)
                if next < count {
                    add(next)
                    next += 1
                }
                if ContinuousClock.now - lastReport > .seconds(30) {
                    lastReport = ContinuousClock.now
                    self.progress.step("scaling (wrapped keys): \(keys.count) of \(count)")
                }
            }
        }
    }

    private func measure(count: Int, keys: WrappedKeyTable, signer: Signer, token: Token) async throws -> BenchReport.WrappedScalingRow {
        let digest = Array(SHA256.hash(data: Data("bench".utf8)))
        // Warm-up (not recorded): fills the caches as a running server's are.
        for _ in 0..<min(2_000, 4 * count) {
            let index = Int.random(in: 0..<count)
            _ = try await signer.sign(digests: [digest], credential: "h-\(index)", wrapped: keys[index], mechanism: .ecdsa(.sha256))
        }
        var all = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        var hits = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        var misses = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        var hitMicros: Double = 0
        var missMicros: Double = 0
        var invalid = 0
        let end = ContinuousClock.now + .seconds(self.options.seconds)
        let started = ContinuousClock.now
        while ContinuousClock.now < end {
            let index = Int.random(in: 0..<count)
            let key = keys[index]
            let unwrapsBefore = token.unwrapStatistics.unwraps
            let t0 = ContinuousClock.now
            let signature = try await signer.sign(digests: [digest], credential: "h-\(index)", wrapped: key, mechanism: .ecdsa(.sha256))[0]
            let micros = UInt64(max(1, ((ContinuousClock.now - t0) / .microseconds(1)).rounded()))
            all.record(micros)
            if token.unwrapStatistics.unwraps > unwrapsBefore {
                misses.record(micros)
                missMicros += Double(micros)
            } else {
                hits.record(micros)
                hitMicros += Double(micros)
            }
            if all.totalCount % 1000 == 1 {
                let publicKey = try P256.Signing.PublicKey(derRepresentation: key.publicKey)
                if !publicKey.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: signature), for: SHA256.hash(data: Data("bench".utf8))) { invalid += 1 }
            }
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        func ms(_ micros: Double) -> Double { (micros / 10).rounded() / 100 }
        return BenchReport.WrappedScalingRow(
            keys: count, created: 0, creationSeconds: 0, creationPerSecond: 0, cachePerSession: self.options.unwrappedKeyCache, sessions: token.sessionCount,
            signatures: Int(all.totalCount), signaturesPerSecond: (Double(all.totalCount) / seconds).rounded(), latency: LatencySummary(all),
            hitRatio: all.totalCount == 0 ? 0 : (Double(hits.totalCount) / Double(all.totalCount) * 1000).rounded() / 1000,
            hit: LatencySummary(hits), miss: LatencySummary(misses),
            hitMeanMs: hits.totalCount == 0 ? 0 : ms(hitMicros / Double(hits.totalCount)),
            missMeanMs: misses.totalCount == 0 ? 0 : ms(missMicros / Double(misses.totalCount)), invalid: invalid)
    }
}

/// The wrapped keys generated so far, by index (generations finish out of order; the table counts those in place from 0).
final class WrappedKeyTable: @unchecked Sendable {
    // Guarded by `lock`.
    private var keys: [WrappedKey?]
    private var filled = 0
    private let lock = NSLock()

    init(capacity: Int) {
        self.keys = []
        self.keys.reserveCapacity(capacity)
    }

    /// Keys 0..<count are all present.
    var count: Int { self.lock.withLock { self.filled } }

    func set(_ index: Int, _ key: WrappedKey) {
        self.lock.withLock {
            while self.keys.count <= index { self.keys.append(nil) }
            self.keys[index] = key
            while self.filled < self.keys.count, self.keys[self.filled] != nil { self.filled += 1 }
        }
    }

    subscript(index: Int) -> WrappedKey { self.lock.withLock { self.keys[index]! } }
}
