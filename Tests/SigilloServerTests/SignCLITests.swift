import Foundation
import PKCS11
import CSCClient
import SigilloDomain
import SigilloCMS
import SigilloSQLite
import SigilloTestSupport
import Testing

@Suite("sigillo sign against the real server")
struct SignCLITests {
    static let sigillo = repositoryRoot.appendingPathComponent(".build/debug/sigillo").path

    @Test("detached CAdES .p7s for several files under one SAD; openssl cms -verify accepts each", arguments: [KeyAlgorithm.ecP256, .rsa2048])
    func signFiles(algorithm: KeyAlgorithm) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.sigillo), "build the sigillo product first (swift build --build-tests does)")
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            var account = try await server.activate(name: "Sara", keyAlgorithm: algorithm)
            let folder = try TestHSM.makeTemporaryDirectory()
            let files = try (0..<3).map { index -> String in
                let path = folder.appendingPathComponent("contract-\(index).pdf").path
                try Data(String(repeating: "clause \(index)\n", count: 1000 * (index + 1)).utf8).write(to: URL(fileURLWithPath: path))
                return path
            }
            let input = Data("\(account.password)\n\(await account.nextOTP())\n".utf8)
            let result = try await runOffPool(Self.sigillo, ["sign"] + files + [
                "--server", server.baseURL, "--ca", server.tlsCAFile, "--username", account.username, "--password-stdin",
            ], input: input)
            #expect(result.status == 0, "\(result.output)")
            for file in files {
                let verify = try await runOffPool("openssl", ["cms", "-verify", "-binary", "-content", file, "-in", file + ".p7s", "-inform", "DER", "-CAfile", server.caFile, "-purpose", "any", "-out", "/dev/null"])
                #expect(verify.status == 0 && verify.output.contains("Verification successful"), "\(file): \(verify.output)")
            }
            // A changed file no longer verifies.
            try Data("tampered".utf8).write(to: URL(fileURLWithPath: files[0]))
            let tampered = try await runOffPool("openssl", ["cms", "-verify", "-binary", "-content", files[0], "-in", files[0] + ".p7s", "-inform", "DER", "-CAfile", server.caFile, "-purpose", "any", "-out", "/dev/null"])
            #expect(tampered.status != 0)
            // All three under one authorization.
            let authorizations = try await server.services.store.auditRecords().filter { $0.event.action == "credential.authorize" && $0.event.outcome == "ok" }
            #expect(authorizations.count == 1)
            #expect(authorizations.first?.event.details == "signatures=3 hashes=3")
        }
    }

    @Test("a wrong OTP is a clear error and writes nothing")
    func wrongOTP() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Ugo")
            let folder = try TestHSM.makeTemporaryDirectory()
            let file = folder.appendingPathComponent("a.txt").path
            try Data("a".utf8).write(to: URL(fileURLWithPath: file))
            let result = try await runOffPool(Self.sigillo, ["sign", file, "--server", server.baseURL, "--ca", server.tlsCAFile, "--username", account.username, "--password-stdin"],
                                              input: Data("\(account.password)\n000000\n".utf8))
            #expect(result.status != 0)
            #expect(result.output.contains("invalid_otp"), "\(result.output)")
            #expect(!FileManager.default.fileExists(atPath: file + ".p7s"))
        }
    }
}
