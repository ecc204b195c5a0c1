import Crypto
import Foundation
import SigilloDomain
import SigilloTestSupport
import Testing

/// The OAuth2 client registry through `sigillo admin clients` against a live admin listener (mutual TLS).
@Suite("sigillo admin clients: the OAuth2 client registry")
struct AdminClientsCLITests {
    @Test("add shows the secret once (stored hashed), list never; bad redirect URIs refused; remove ends the client's tokens")
    func registry() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: AdminCLITests.binary), "build the executable first: swift build")
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            let directory = admin.directory
            let connection = ["--url", admin.baseURL, "--cert", directory.appendingPathComponent("operator.pem").path,
                              "--key", directory.appendingPathComponent("operator-key.pem").path, "--ca", directory.appendingPathComponent("tls-ca.pem").path]
            func sigillo(_ arguments: [String]) async throws -> (status: Int32, output: String) {
                try await runOffPool(AdminCLITests.binary, ["admin", "clients"] + arguments + connection)
            }
            let oauth = admin.server.services.domain.oauth

            let added = try await sigillo(["add", "Wallet Europa", "--redirect-uri", "https://wallet.example/cb", "eu.example.wallet:/cb", "--json"])
            #expect(added.status == 0, "\(added.output)")
            let registered = try #require(try JSONSerialization.jsonObject(with: Data(added.output.utf8)) as? [String: Any])
            let client = try #require(registered["client"] as? [String: Any])
            let clientID = try #require(client["clientID"] as? String)
            let secret = try #require(registered["clientSecret"] as? String)
            #expect(client["redirectURIs"] as? [String] == ["https://wallet.example/cb", "eu.example.wallet:/cb"])
            #expect(try await oauth.authenticateClient(id: clientID, secret: secret).name == "Wallet Europa")
            let stored = try #require(try await admin.server.services.store.oauthClient(id: clientID))
            #expect(stored.secretHash != Array(secret.utf8) && stored.secretHash?.count == 32 && stored.publicKeyPEM == nil)

            let text = try await sigillo(["add", "Second", "--redirect-uri", "http://127.0.0.1:9999/cb"])
            #expect(text.status == 0 && text.output.contains("client_secret: ") && text.output.contains("shown only now"), "\(text.output)")
            let refused = try await sigillo(["add", "Bad", "--redirect-uri", "http://wallet.example/cb"])
            #expect(refused.status == 1 && refused.output.contains("invalid_request") && refused.output.contains("loopback"), "\(refused.output)")

            // A client with a key: private_key_jwt, no secret; a key that is not EC P-256 is refused.
            let folder = try TestHSM.makeTemporaryDirectory()
            let keyFile = folder.appendingPathComponent("wallet.pem")
            try P256.Signing.PrivateKey().publicKey.pemRepresentation.write(to: keyFile, atomically: true, encoding: .utf8)
            let keyed = try await sigillo(["add", "Keyed", "--redirect-uri", "https://keyed.example/cb", "--public-key", keyFile.path])
            #expect(keyed.status == 0 && keyed.output.contains("private_key_jwt") && !keyed.output.contains("client_secret:"), "\(keyed.output)")
            let badKey = folder.appendingPathComponent("rsa.pem")
            try "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n".write(to: badKey, atomically: true, encoding: .utf8)
            let refusedKey = try await sigillo(["add", "Bad key", "--redirect-uri", "https://keyed.example/cb", "--public-key", badKey.path])
            #expect(refusedKey.status == 1 && refusedKey.output.contains("P-256"), "\(refusedKey.output)")

            let list = try await sigillo(["list"])
            #expect(list.status == 0 && list.output.contains(clientID) && list.output.contains("Wallet Europa") && list.output.contains("Second"), "\(list.output)")
            #expect(list.output.contains("Keyed  private_key_jwt") && list.output.contains("Wallet Europa  client_secret"), "\(list.output)")
            #expect(!list.output.contains(secret))

            // A service token of this client, then the client removed: the token stops working.
            let account = try await admin.server.activate(name: "Rita", device: .hotp)
            let registeredClient = try await oauth.authenticateClient(id: clientID, secret: secret)
            let verifier = String(repeating: "a", count: 50)
            let request = AuthorizationRequest(clientID: clientID, redirectURI: "https://wallet.example/cb", state: nil,
                                               codeChallenge: OAuthServerChallenge.s256(verifier), scope: .service, credential: nil)
            let page = try await oauth.beginAuthorization(request)
            let redirect = try await oauth.approve(pending: page, username: account.username, password: account.password,
                                                   otp: HOTP.code(secret: account.secret, counter: account.counter))
            let code = try #require(redirect.parameters.first { $0.0 == "code" }?.1)
            let token = try await oauth.exchange(code: code, redirectURI: "https://wallet.example/cb", codeVerifier: verifier, client: registeredClient)
            #expect(try await admin.server.services.domain.authentication.bearer(accessToken: token.accessToken).holderID == account.holder.id)

            let removed = try await sigillo(["remove", clientID])
            #expect(removed.status == 0 && removed.output.contains("removed"), "\(removed.output)")
            await #expect(throws: SigilloError.self) { _ = try await admin.server.services.domain.authentication.bearer(accessToken: token.accessToken) }
            let again = try await sigillo(["remove", clientID])
            #expect(again.status == 1 && again.output.contains("not_found"), "\(again.output)")
            #expect(!(try await sigillo(["list"])).output.contains(clientID))

            let events = try await admin.server.services.store.auditRecords().map(\.event)
            #expect(events.contains { $0.action == "oauth2.client.add" && $0.target == clientID && $0.actor.contains("operator") })
            #expect(events.contains { $0.action == "oauth2.client.remove" && $0.target == clientID })
        }
    }
}

/// PKCE S256 as a client computes it.
enum OAuthServerChallenge {
    static func s256(_ verifier: String) -> String {
        Data(SHA256.hash(data: Data(verifier.utf8))).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}
