import Foundation
import CSCClient
import SigilloDomain
import SigilloMail
import SigilloSQLite
import SigilloTestSupport
import Testing

/// The activation and password-reset pages driven end to end in headless Chromium (Debian's package) through
/// Playwright, reading the QR code with zbarimg (`Tests/Interop/browser_flows.py`); mail goes through a real SMTP
/// relay on loopback (aiosmtpd), where the script reads the reset link.
@Suite("Browser: activation and password reset in headless Chromium")
struct BrowserTests {
    @Test("invitation link → QR code → TOTP → user code; lost password → mailed link → new password; used link refused")
    func activationAndReset() async throws {
        let python = repositoryRoot.appendingPathComponent(".venv/bin/python").path
        try #require(FileManager.default.isExecutableFile(atPath: python), "run `make venv` first (make test does)")
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"), "install Debian's chromium (make test does)")
        let fixture = try TestToken()
        let relay = try await TestSMTPRelay.sink(folder: try TestHSM.makeTemporaryDirectory())
        defer { Task { await relay.stop() } }
        try await LiveServer.with(fixture, mailRelayPort: relay.port) { server in
            let service = server.services.domain
            let holder = try await service.enrollment.createHolder(givenName: "Bruna", surname: "Fontana", fiscalCode: TestData.fiscalCode(), email: "bruna@example.it",
                                                        mobile: "+393471230077", actor: "op", recognized: true)
            let invitation = try await service.enrollment.invite(holderID: holder.id, actor: "op")
            var environment = TestHSM.environment
            environment["SIGILLO_PASSWORD"] = "correct horse battery"
            environment["SIGILLO_NEW_PASSWORD"] = "a brand new secret"
            let shots = try TestHSM.makeTemporaryDirectory()
            let result = try await runOffPool(python, [
                repositoryRoot.appendingPathComponent("Tests/Interop/browser_flows.py").path,
                "--url", server.baseURL, "--code", invitation.code, "--username", "bruna",
                "--mail-dir", relay.folder.path, "--email", "bruna@example.it", "--shots", shots.path,
            ], environment: environment)
            #expect(result.status == 0, "\(result.output)")
            for step in ["ACTIVATED", "USERCODE ", "RESET-OK", "LINK-REFUSED"] {
                #expect(result.output.contains(step), "\(result.output)")
            }
            // What the browser did is real: the holder is active, the new password logs in, the user code works.
            #expect(try await server.services.store.holder(id: holder.id)?.state == .active)
            _ = try await service.authentication.login(username: "bruna", password: "a brand new secret")
            let userCode = try #require(result.output.split(separator: "\n").first { $0.hasPrefix("USERCODE ") }?.dropFirst("USERCODE ".count))
            _ = try await service.authentication.checkUserCode(username: "bruna", userCode: String(userCode))
            // The invitation went through the relay too, with its link.
            let received = try relay.receivedDescriptions().compactMap { try JSONSerialization.jsonObject(with: Data(contentsOf: $0)) as? [String: Any] }
            #expect(received.contains { ($0["body"] as? String)?.contains("/activate?code=\(invitation.code)") == true })
            let audit = try await server.services.store.auditRecords()
            #expect(audit.contains { $0.event.action == "recovery.password.reset" && $0.event.outcome == "ok" })
        }
    }
}
