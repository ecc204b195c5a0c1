import Foundation
import PKCS11
import CSCClient
import SigilloDomain
import SigilloMail
import SigilloCMS
import SigilloSQLite
import SigilloTestSupport
import Testing

/// The repository root, from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite("Interop: pyHanko signs PDFs through the CSC v1 routes")
struct PyHankoTests {
    @Test("PAdES with password + TOTP, validated by pyHanko against the Sigillo CA", arguments: [(KeyAlgorithm.ecP256, 3), (.rsa2048, 1)])
    func pyHanko(algorithm: KeyAlgorithm, count: Int) async throws {
        let python = repositoryRoot.appendingPathComponent(".venv/bin/python").path
        try #require(FileManager.default.isExecutableFile(atPath: python), "run `make venv` first (make test does)")
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Paola", keyAlgorithm: algorithm, device: .totp)
            let output = try TestHSM.makeTemporaryDirectory()
            var environment = TestHSM.environment
            environment["SIGILLO_PASSWORD"] = account.password
            environment["SIGILLO_TOTP_SECRET"] = Base32.encode(account.secret, padding: false)
            environment["SIGILLO_TOTP_LAST_STEP"] = String(try #require(account.totp.lastStep))
            let result = try await runOffPool(python, [
                repositoryRoot.appendingPathComponent("Tests/Interop/pyhanko_csc.py").path,
                "--url", server.baseURL, "--tls-ca", server.tlsCAFile, "--trust-root", server.caFile,
                "--username", account.username, "--credential", account.credential.id, "--count", "\(count)", "--out", output.path,
            ], environment: environment)
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.components(separatedBy: "VALID ").count - 1 == count, "\(result.output)")
            #expect(!result.output.contains("INVALID"))
            // One authorization (one SAD) for the whole batch.
            #expect(result.output.contains("AUTHORIZE-CALLS 1"), "\(result.output)")
            // The signatures are in the audit log as one signHash of `count` signatures.
            let records = try await server.services.store.auditRecords()
            #expect(records.contains { $0.event.action == "signature.sign" && $0.event.outcome == "ok" && $0.event.details == "signatures=\(count)" })
        }
    }
}
