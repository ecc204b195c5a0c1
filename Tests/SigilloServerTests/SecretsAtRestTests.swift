import Crypto
import Foundation
import SigilloDomain
import SigilloSQLite
import SigilloTestSupport
import Testing

@Suite("Secrets at rest: what a copy of the database folder gives")
struct SecretsAtRestTests {
    /// The database, its write-ahead log and its shared-memory index, as bytes.
    static func folderBytes(_ path: String) throws -> Data {
        var bytes = Data()
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            bytes += try Data(contentsOf: URL(fileURLWithPath: file))
        }
        return bytes
    }

    /// The body of the `count`-th message the relay received, once it has (the dispatcher runs beside the server).
    static func delivered(_ count: Int, _ relay: TestSMTPRelay) async throws -> String {
        try await waitUntil("the relay receiving \(count) messages", changesIn: relay.folder) { try relay.receivedDescriptions().count >= count }
        let descriptions = try relay.receivedDescriptions()
        try #require(descriptions.count >= count, "the relay received \(descriptions.count) messages, not \(count)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: descriptions[count - 1])) as? [String: Any]
        return try #require(json?["body"] as? String)
    }

    /// The single-use code of the first `?code=` link in a mail.
    static func linkCode(_ body: String) throws -> String {
        try #require(CapturingNotifier.linkCode(in: body))
    }

    @Test("invite → activate → login → authorize → sign, SMS codes, a password reset mail: no secret is in the database, its WAL or its index")
    func noSecretInTheFiles() async throws {
        let fixture = try TestToken()
        let relay = try await TestSMTPRelay.sink(folder: try TestHSM.makeTemporaryDirectory())
        defer { Task { await relay.stop() } }
        let clock = TestClock()
        try await LiveServer.with(fixture, clock: clock.serviceClock, mailRelayPort: relay.port) { server in
            var secrets: [(name: String, bytes: Data)] = []
            func keep(_ name: String, _ text: String) { secrets.append((name, Data(text.utf8))) }
            let domain = server.services.domain
            let password = "correct horse battery"
            keep("password", password)

            // The operator registers and invites: the activation link is mailed and delivered.
            let unique = UUID().uuidString.prefix(6).lowercased()
            let holder = try await domain.enrollment.createHolder(
                givenName: "Sara", surname: "Conti", fiscalCode: TestData.fiscalCode(), email: "sara.\(unique)@example.it",
                mobile: "+39333\(Int.random(in: 1_000_000...9_999_999))", actor: "operator:test", recognized: true)
            let invitation = try await domain.enrollment.invite(holderID: holder.id, actor: "operator:test")
            keep("activation code", invitation.code)
            let invitationMail = try await Self.delivered(1, relay)
            #expect(try Self.linkCode(invitationMail) == invitation.code)
            keep("invitation link", "activate?code=\(invitation.code)")

            // The holder activates with an authenticator app: the seed is shown once, in base32.
            let begun = try await server.post("/activation/v1/begin", ["code": invitation.code, "device": "totp"])
            let seedText = try #require(begun.json["secret"] as? String, "\(begun.json)")
            let seed = try #require(Base32.decode(seedText))
            keep("OTP seed in base32", seedText)
            secrets.append(("OTP seed", Data(seed)))
            keep("OTP seed in hex", seed.map { String(format: "%02x", $0) }.joined())
            let username = "sara-\(unique)"
            let completed = try await server.post("/activation/v1/complete", [
                "code": invitation.code, "username": username, "password": password, "otp": TOTP.code(secret: seed, time: clock.now),
            ])
            #expect(completed.status == 201, "\(completed.json)")
            clock.advance(30)
            let credentialID = try #require(completed.json["credentialID"] as? String)
            keep("user code", try #require(completed.json["userCode"] as? String))

            // Login, authorize and sign.
            let login = try await server.post("/csc/v1/auth/login", basic: (username, password))
            let token = try #require(login.json["access_token"] as? String, "\(login.json)")
            keep("access token", token)
            let hash = Array(SHA256.hash(data: Data("contratto".utf8)))
            let authorized = try await server.post("/csc/v1/credentials/authorize", [
                "credentialID": credentialID, "numSignatures": 2, "hash": [b64(hash)], "PIN": password, "OTP": TOTP.code(secret: seed, time: clock.now),
            ], bearer: token)
            clock.advance(30)
            let sad = try #require(authorized.json["SAD"] as? String, "\(authorized.json)")
            keep("SAD", sad)
            let signed = try await server.post("/csc/v1/signatures/signHash", [
                "credentialID": credentialID, "SAD": sad, "hash": [b64(hash)], "signAlgo": "1.2.840.10045.4.3.2",
            ], bearer: token)
            #expect(signed.status == 200, "\(signed.json)")

            // A password reset link, mailed and delivered (left unused: a live link).
            let reset = try await server.post("/recovery/v1/password/request", ["account": username])
            #expect(reset.status == 202, "\(reset.json)")
            let resetCode = try Self.linkCode(try await Self.delivered(2, relay))
            keep("password reset code", resetCode)

            // An SMS holder: the activation code by SMS, then codes for signing, one used and one still live.
            let smsHolder = try await domain.enrollment.createHolder(
                givenName: "Ugo", surname: "Conti", fiscalCode: TestData.fiscalCode(), email: "ugo.\(unique)@example.it",
                mobile: "+39333\(Int.random(in: 1_000_000...9_999_999))", actor: "operator:test", recognized: true)
            let smsInvitation = try await domain.enrollment.invite(holderID: smsHolder.id, actor: "operator:test")
            keep("second activation code", smsInvitation.code)
            _ = try await Self.delivered(3, relay)
            let smsBegun = try await server.post("/activation/v1/begin", ["code": smsInvitation.code, "device": "sms"])
            #expect(smsBegun.status == 200, "\(smsBegun.json)")
            var smsCodes = [try server.lastSMSCode()]
            let smsUsername = "ugo-\(unique)"
            let smsCompleted = try await server.post("/activation/v1/complete", [
                "code": smsInvitation.code, "username": smsUsername, "password": password, "otp": smsCodes[0],
            ])
            let smsCredentialID = try #require(smsCompleted.json["credentialID"] as? String, "\(smsCompleted.json)")
            let smsToken = try #require(try await server.post("/csc/v1/auth/login", basic: (smsUsername, password)).json["access_token"] as? String)
            keep("second access token", smsToken)
            #expect(try await server.post("/csc/v1/credentials/sendOTP", ["credentialID": smsCredentialID], bearer: smsToken).status == 204)
            smsCodes.append(try server.lastSMSCode())
            let smsAuthorized = try await server.post("/csc/v1/credentials/authorize", [
                "credentialID": smsCredentialID, "numSignatures": 1, "hash": [b64(hash)], "PIN": password, "OTP": smsCodes[1],
            ], bearer: smsToken)
            keep("second SAD", try #require(smsAuthorized.json["SAD"] as? String, "\(smsAuthorized.json)"))
            #expect(try await server.post("/csc/v1/credentials/sendOTP", ["credentialID": smsCredentialID], bearer: smsToken).status == 204)
            smsCodes.append(try server.lastSMSCode())
            // Six digits also occur by chance in a megabyte of hex digests and ids: measured, one random code in 20,000.
            for (index, code) in smsCodes.enumerated() {
                secrets.append(("SMS code \(index + 1) as text", Data(("is \(code)").utf8)))
                secrets.append(("SMS code \(index + 1)", Data(code.utf8)))
            }

            // Every mail went out, and no body is left.
            let store = server.services.store
            try await waitUntil("every mail marked sent", changesIn: server.directory) { try await !store.mails().contains { $0.status != .sent } }
            let mails = try await server.services.store.mails()
            #expect(mails.count == 3 && mails.allSatisfy { $0.status == .sent && $0.body.isEmpty }, "\(mails.map(\.status))")

            let path = server.directory.appendingPathComponent("sigillo.sqlite").path
            let bytes = try Self.folderBytes(path)
            // The search finds what is meant to be there.
            #expect(bytes.range(of: Data(username.utf8)) != nil && bytes.range(of: Data(holder.email.utf8)) != nil)
            for secret in secrets {
                #expect(bytes.range(of: secret.bytes) == nil, "\(secret.name) is readable in the database files")
            }
            // An SMS code's stored digest must not be its plain SHA-256: a million guesses would find the code.
            for code in smsCodes {
                #expect(bytes.range(of: Data(SHA256.hash(data: Data(code.utf8)))) == nil, "SHA-256 of SMS code \(code) is in the database")
            }
        }
    }
}
