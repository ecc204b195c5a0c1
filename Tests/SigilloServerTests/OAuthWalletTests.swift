import Crypto
import Foundation
import SigilloDomain
import SigilloTestSupport
import Testing

/// A wallet that knows only CSC v2 and OAuth2 signs end to end (`Tests/Interop/oauth_wallet.py`): Authlib does the
/// OAuth2 client's part (PKCE S256, state, client_secret_basic and client_secret_post), headless Chromium (Debian's
/// package, through Playwright) the holder's part on the authorization page; the signatures are verified against the
/// certificate `credentials/list` gives. Both request shapes of the EUDI client (RAR and plain parameters), with PAR and
/// without; a replayed code, a wrong code_verifier, an unregistered redirect URI, other hashes, a used token and a
/// service token on signHash are refused with their RFC 6749 / CSC codes.
@Suite("OAuth2: a wallet signs with credential-scoped tokens (Authlib and Chromium)")
struct OAuthWalletTests {
    @Test("service and credential tokens through the holder's page; RAR and plain, PAR or not; every misuse refused")
    func wallet() async throws {
        let python = repositoryRoot.appendingPathComponent(".venv/bin/python").path
        try #require(FileManager.default.isExecutableFile(atPath: python), "run `make venv` first (make test does)")
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"), "install Debian's chromium (make test does)")
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Wanda", device: .hotp)
            let redirect = "https://wallet.example/callback"
            let (client, issued) = try await server.services.domain.oauth.registerClient(name: "Wallet di prova", redirectURIs: [redirect], actor: "operator:test")
            let secret = try #require(issued)
            // A second client authenticates with private_key_jwt: its key pair made here, the private key handed to the wallet.
            let key = P256.Signing.PrivateKey()
            let keyFile = try TestHSM.makeTemporaryDirectory().appendingPathComponent("wallet-key.pem")
            try key.pemRepresentation.write(to: keyFile, atomically: true, encoding: .utf8)
            let (signer, none) = try await server.services.domain.oauth.registerClient(
                name: "Wallet con chiave", redirectURIs: [redirect], publicKeyPEM: key.publicKey.pemRepresentation, actor: "operator:test")
            #expect(none == nil)
            var environment = TestHSM.environment
            environment["SIGILLO_PASSWORD"] = account.password
            environment["SIGILLO_CLIENT_SECRET"] = secret
            environment["SIGILLO_HOTP_SECRET"] = Base32.encode(account.secret, padding: false)
            environment["SIGILLO_HOTP_COUNTER"] = String(account.counter)
            environment["SIGILLO_JWT_KEY_FILE"] = keyFile.path
            let result = try await runOffPool(python, [
                repositoryRoot.appendingPathComponent("Tests/Interop/oauth_wallet.py").path,
                "--url", server.baseURL, "--tls-ca", server.tlsCAFile, "--client-id", client.id, "--client-name", "Wallet di prova",
                "--redirect-uri", redirect, "--username", account.username, "--credential", account.credential.id,
                "--jwt-client-id", signer.id, "--jwt-client-name", "Wallet con chiave",
            ], environment: environment)
            #expect(result.status == 0, "\(result.output)")
            for step in ["DISCOVERY", "SERVICE-TOKEN ", "SERVICE-TOKEN-NEVER-SIGNS", "WRONG-PASSWORD-REFUSED", "SIGNED rar+par 2", "TOKEN-USED-TWICE-REFUSED",
                         "OTHER-HASH-REFUSED", "SIGNED plain 2", "WRONG-VERIFIER-REFUSED", "REPLAYED-CODE-REFUSED", "REVOKED rar",
                         "UNREGISTERED-REDIRECT-REFUSED", "PKCE-REQUIRED", "WRONG-CLIENT-SECRET-REFUSED", "DENIED", "PRIVATE-KEY-JWT"] {
                #expect(result.output.contains(step), "missing \(step): \(result.output)")
            }
            // Six approvals, one HOTP code each.
            #expect(result.output.contains("HOTP-COUNTER \(account.counter + 6)"), "\(result.output)")

            // The audit log has the whole story, and two signHash calls of two signatures each.
            let events = try await server.services.store.auditRecords().map(\.event)
            #expect(events.filter { $0.action == "oauth2.authorize" && $0.outcome == "ok" }.count == 6)
            #expect(events.filter { $0.action == "oauth2.token" && $0.outcome == "ok" }.count == 6)
            #expect(events.contains { $0.action == "oauth2.token" && $0.outcome == "ok" && $0.details.contains(signer.id) })
            #expect(events.filter { $0.action == "signature.sign" && $0.outcome == "ok" && $0.details == "signatures=2" }.count == 2)
            #expect(events.contains { $0.action == "oauth2.authorize" && $0.outcome == "denied" })
            #expect(events.contains { $0.action == "oauth2.authorize" && $0.outcome == "refused" && $0.details.contains("wrong password") })

            // The client secret is nowhere in the database in clear.
            let path = server.directory.appendingPathComponent("sigillo.sqlite").path
            for file in [path, path + "-wal"] where FileManager.default.fileExists(atPath: file) {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
                #expect(bytes.range(of: Data(secret.utf8)) == nil, "the client secret is in \(file)")
            }
        }
    }
}
