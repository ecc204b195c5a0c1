import Foundation
import SigilloTestSupport
import Testing

@Suite("sigillo bench: the machinery on tiny parameters (no timing asserted)")
struct BenchCLITests {
    @Test("every part runs: JSON has the figures, counts are nonzero, no request failed, every signature verified")
    func tinyRun() async throws {
        let bench = SignCLITests.sigillo + "-bench"
        try #require(FileManager.default.isExecutableFile(atPath: bench), "build the sigillo-bench product first (swift build --build-tests does)")
        let result = try await runOffPool(bench, [
            "--json", "--quiet", "--verify-all", "--seconds", "1", "--clients", "2", "--keys", "ecdsa-p256,rsa-2048", "--hashes", "1,3",
            "--multisign", "30", "--raw-seconds", "0.2", "--hash-file-mib", "4", "--small-files", "10", "--scaling", "3,6",
        ])
        #expect(result.status == 0, "\(result.output.suffix(3000))")
        let start = try #require(result.output.firstIndex(of: "{"))
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.output[start...].utf8)) as? [String: Any])
        #expect(report["failures"] as? Int == 0)
        #expect(report["invalidSignatures"] as? Int == 0)

        let baseline = try #require(report["baseline"] as? [[String: Any]])
        #expect(baseline.count == 4)
        #expect(baseline.allSatisfy { ($0["signaturesPerSecond"] as? Double ?? 0) > 0 })

        // 2 keys × (flow, sign-only) × 2 batch sizes.
        let phases = try #require(report["phases"] as? [[String: Any]])
        #expect(phases.count == 8)
        for phase in phases {
            let signatures = phase["signatures"] as? Int ?? 0
            #expect(signatures > 0, "\(phase)")
            #expect(phase["verified"] as? Int == signatures, "\(phase)")
            #expect(phase["failures"] as? Int == 0, "\(phase)")
            #expect(signatures % (phase["hashesPerRequest"] as? Int ?? 1) == 0)
            let latency = try #require(phase["latency"] as? [String: Any])
            #expect(Set(latency.keys) == ["count", "p50", "p90", "p99", "max"])
            #expect(phase["ratioToRaw"] is Double)
            #expect(phase["serverCPU"] is Double)
        }
        #expect(Set(phases.compactMap { $0["mode"] as? String }) == ["flow", "sign-only"])

        let authorize = try #require(report["authorize"] as? [String: Any])
        let authorizePhase = try #require(authorize["phase"] as? [String: Any])
        #expect((authorizePhase["requests"] as? Int ?? 0) > 0)
        #expect((authorize["argon2idVerifyPerSecond2Threads"] as? Double ?? 0) > 0)

        let hashing = try #require(report["hashing"] as? [[String: Any]])
        #expect(hashing.count == 3)
        #expect(hashing.allSatisfy { ($0["fileHasherMiBPerSecond"] as? Double ?? 0) > 0 && ($0["opensslMiBPerSecond"] as? Double ?? 0) > 0 })

        // Holder keys wrapped (the default): keys chosen at random, hits and misses (an unwrap) apart.
        let wrapped = try #require(report["wrappedScaling"] as? [[String: Any]])
        #expect(wrapped.compactMap { $0["keys"] as? Int } == [3, 6])
        #expect(wrapped.compactMap { $0["created"] as? Int } == [3, 3])
        for row in wrapped {
            #expect((row["signatures"] as? Int ?? 0) > 0, "\(row)")
            #expect(row["invalid"] as? Int == 0, "\(row)")
            #expect(((row["hit"] as? [String: Any])?["count"] as? Int ?? 0) > 0, "\(row)")
            #expect(row["creationPerSecond"] is Double)
        }
        let reference = try #require(report["wrappedScalingReference"] as? [String: Any])
        #expect((reference["signatures"] as? Int ?? 0) > 0 && reference["invalid"] as? Int == 0)
    }

    @Test("scaling with token objects (--holder-keys token): key pairs in the token, signHash through the server")
    func tokenScaling() async throws {
        let bench = SignCLITests.sigillo + "-bench"
        try #require(FileManager.default.isExecutableFile(atPath: bench), "build the sigillo-bench product first (swift build --build-tests does)")
        let result = try await runOffPool(bench, ["scaling", "--holder-keys", "token", "--json", "--quiet", "--seconds", "1", "--multisign", "30", "--raw-seconds", "0.2", "--scaling", "3,6"])
        #expect(result.status == 0, "\(result.output.suffix(3000))")
        let start = try #require(result.output.firstIndex(of: "{"))
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.output[start...].utf8)) as? [String: Any])
        let scaling = try #require(report["scaling"] as? [[String: Any]])
        #expect(scaling.compactMap { $0["keyPairs"] as? Int } == [3, 6])
        #expect(scaling.allSatisfy { (($0["signHash"] as? [String: Any])?["signatures"] as? Int ?? 0) > 0 })
        #expect(report["wrappedScaling"] == nil)
    }
}
