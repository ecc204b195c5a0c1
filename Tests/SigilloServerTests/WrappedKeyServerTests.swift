import Crypto
import Foundation
import Logging
import PKCS11
import SigilloDomain
import SigilloServer
import SigilloTestSupport
import Testing
import X509

@Suite("Server: holder keys wrapped in the database")
struct WrappedKeyServerTests {
    /// Authorizes one digest for `account` and signs it; returns the signHash response.
    private func signOnce(_ server: LiveServer, _ account: inout LiveServer.Account, _ text: String) async throws -> CSCResponse {
        let token = try #require(try await server.post("/csc/v1/auth/login", basic: (account.username, account.password)).json["access_token"] as? String)
        let digest = Array(SHA256.hash(data: Data(text.utf8)))
        let authorize = try await server.post("/csc/v1/credentials/authorize", [
            "credentialID": account.credential.id, "numSignatures": 1, "hash": [b64(digest)], "PIN": account.password, "OTP": await account.nextOTP(),
        ], bearer: token)
        let sad = try #require(authorize.json["SAD"] as? String, "\(authorize.json)")
        return try await server.post("/csc/v1/signatures/signHash", [
            "credentialID": account.credential.id, "SAD": sad, "hash": [b64(digest)], "signAlgo": "1.2.840.10045.4.3.2",
        ], bearer: token)
    }

    @Test("after enrolling holders, pkcs11-tool lists no holder private key in the token (token objects: it lists them)", arguments: HolderKeyStorage.allCases)
    func noHolderKeyInTheToken(holderKeys: HolderKeyStorage) async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture, holderKeys: holderKeys) { server in
            var accounts: [LiveServer.Account] = []
            for (index, algorithm) in [KeyAlgorithm.ecP256, .ecP384, .rsa2048].enumerated() {
                accounts.append(try await server.activate(name: "K\(index)", keyAlgorithm: algorithm))
            }
            // They sign (unwrapped keys are session objects of the server's sessions, not token objects).
            var first = accounts[0]
            #expect(try await self.signOnce(server, &first, "listed").status == 200)
            let listed = try run("pkcs11-tool", ["--module", TestHSM.modulePath, "--token-label", fixture.label, "--login", "--pin", fixture.userPIN, "--list-objects"],
                                 environment: try fixture.isolatedEnvironment())
            #expect(listed.status == 0, "\(listed.output)")
            let privateKeys = listed.output.components(separatedBy: "Private Key Object").dropFirst()
            for account in accounts {
                let hexID = Array(account.credential.id.utf8).map { String(format: "%02x", $0) }.joined()
                let present = privateKeys.contains { $0.contains("ID:         \(hexID)") }
                #expect(present == (holderKeys == .token), "\(account.credential.id) in the token: \(present)\n\(listed.output)")
            }
            if holderKeys == .wrapped {
                // The KEK is there, as a secret key that wraps and unwraps only.
                #expect(listed.output.contains("label:      sigillo-kek\n"), "\(listed.output)")
                #expect(accounts.allSatisfy { $0.credential.wrappedKey != nil && $0.credential.publicKey != nil })
            }
        }
    }

    @Test("a wrapped key moved to another credential's row, or beside another public key, is refused (403, never a 500); put back, it signs again")
    func movedOrAlteredBlobRefused() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            let server = admin.server
            var alice = try await server.activate(name: "Alice")
            let bob = try await server.activate(name: "Bob")
            #expect(try await self.signOnce(server, &alice, "before").status == 200)
            try admin.tamper("CREATE TABLE saved AS SELECT wrapped_key, public_key FROM credentials WHERE id = '\(alice.credential.id)'")

            // Bob's wrapped key and public key in Alice's row: Alice's password and OTP would sign with Bob's key.
            try admin.tamper("""
                UPDATE credentials SET wrapped_key = (SELECT wrapped_key FROM credentials WHERE id = '\(bob.credential.id)'),
                public_key = (SELECT public_key FROM credentials WHERE id = '\(bob.credential.id)') WHERE id = '\(alice.credential.id)'
                """)
            let moved = try await self.signOnce(server, &alice, "moved")
            #expect(moved.status == 403, "\(moved.json)")
            #expect(moved.error == SigilloError.Code.credentialDisabled.rawValue, "\(moved.json)")

            // Alice's blob beside Bob's public key.
            try admin.tamper("""
                UPDATE credentials SET wrapped_key = (SELECT wrapped_key FROM saved),
                public_key = (SELECT public_key FROM credentials WHERE id = '\(bob.credential.id)') WHERE id = '\(alice.credential.id)'
                """)
            #expect(try await self.signOnce(server, &alice, "altered").status == 403)
            // Garbage in the column: a clear refusal too.
            try admin.tamper("UPDATE credentials SET wrapped_key = X'0102' WHERE id = '\(alice.credential.id)'")
            #expect(try await self.signOnce(server, &alice, "garbage").status == 403)

            // Put back, Alice's key signs again (the refusals above are the binding's doing).
            try admin.tamper("UPDATE credentials SET wrapped_key = (SELECT wrapped_key FROM saved), public_key = (SELECT public_key FROM saved) WHERE id = '\(alice.credential.id)'")
            let again = try await self.signOnce(server, &alice, "after")
            #expect(again.status == 200, "\(again.json)")
            #expect(server.services.token.unwrapStatistics.refusals >= 2)
        }
    }

    @Test("keys migrate: refused while new keys are token objects (409)")
    func migrateRefusedInTokenMode() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture, holderKeys: .token) { admin in
            let response = try await admin.request(.POST, "keys/migrate")
            #expect(response.status == 409, "\(String(decoding: response.data, as: UTF8.self))")
        }
    }

    @Test("holderKeys left out: wrapped for a new installation (KEK created at first start), token objects for an older one without KEK")
    func defaultStorage() async throws {
        let fixture = try TestToken()
        let logger = Logger(label: "test")
        func storage(_ configured: HolderKeyStorage?, fresh: Bool) async throws -> HolderKeyStorage {
            var configuration = ServerConfiguration()
            configuration.holderKeys = configured
            return try await SigilloServices.holderKeyStorage(configuration: configuration, token: fixture.token, freshInstallation: fresh, logger: logger)
        }
        // An installation from before wrapped keys (its database exists, its token has no KEK) keeps token objects ...
        #expect(try await storage(nil, fresh: false) == .token)
        #expect(try await storage(.token, fresh: false) == .token)
        await #expect(throws: PKCS11Error.self) { try await fixture.token.checkKEK() }
        // ... and refuses to start wrapped without a KEK: a new one would not open keys wrapped before.
        await #expect(throws: ConfigurationError.self) { try await storage(.wrapped, fresh: false) }
        // A new installation runs wrapped: the KEK is made at its first start.
        #expect(try await storage(nil, fresh: true) == .wrapped)
        try await fixture.token.checkKEK()
        #expect(try await storage(nil, fresh: false) == .wrapped)
        #expect(try await storage(.wrapped, fresh: false) == .wrapped)
        #expect(try await storage(.token, fresh: false) == .token)
    }

    @Test("configuration: holderKeys, kekID and unwrappedKeyCache read from JSON and the environment; bad values refused")
    func configuration() throws {
        let file = try TestHSM.makeTemporaryDirectory().appendingPathComponent("config.json")
        try Data(#"{"holderKeys": "token", "kekID": "other-kek", "unwrappedKeyCache": 16}"#.utf8).write(to: file)
        let configuration = try ServerConfiguration.load(path: file.path, environment: [:])
        #expect(configuration.holderKeys == .token)
        #expect(try configuration.tokenConfiguration().kekID == "other-kek")
        #expect(try configuration.tokenConfiguration().unwrappedKeyCacheSize == 16)
        #expect(try ServerConfiguration.load(path: nil, environment: [:]).holderKeys == nil)
        #expect(try ServerConfiguration.load(path: file.path, environment: ["SIGILLO_HOLDER_KEYS": "wrapped"]).holderKeys == .wrapped)
        #expect(throws: ConfigurationError.self) { try ServerConfiguration.load(path: nil, environment: ["SIGILLO_HOLDER_KEYS": "both"]) }
        #expect(throws: ConfigurationError.self) { try ServerConfiguration.load(path: nil, environment: ["SIGILLO_UNWRAPPED_KEY_CACHE": "0"]) }
        try Data(#"{"holderKeys": "sometimes"}"#.utf8).write(to: file)
        #expect(throws: ConfigurationError.self) { try ServerConfiguration.load(path: file.path, environment: [:]) }
    }
}
