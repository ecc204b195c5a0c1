import AsyncHTTPClient
import Crypto
import Foundation
import PKCS11
import CSCClient
import CSCProtocol
import SigilloDomain
import SigilloCMS
import SigilloPKI
import SigilloSQLite
import SigilloTestSupport
import Testing

@Suite("Admin API over mutual TLS")
struct AdminTests {
    static let holderBody: @Sendable () -> [String: Any] = {
        let unique = UUID().uuidString.prefix(8).lowercased()
        return ["givenName": "Giulia", "surname": "Bianchi", "fiscalCode": TestData.fiscalCode(), "email": "giulia.\(unique)@example.it",
                "mobile": "+39347\(Int.random(in: 1_000_000...9_999_999))"]
    }

    @Test("only clients with a certificate from the admin CA get in; the operator is the certificate's subject")
    func mutualTLS() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            // No client certificate: the handshake is refused.
            let anonymous = try AdminServer.client(directory: admin.directory)
            await #expect(throws: (any Error).self) { _ = try await admin.request(.GET, "whoami", client: anonymous) }
            try await anonymous.shutdown()
            // A certificate from another admin CA (same script, another folder): refused too.
            let other = admin.directory.appendingPathComponent("other")
            try LiveServer.makeCertificates(in: other)
            let rogue = try AdminServer.client(
                directory: admin.directory, certificate: other.appendingPathComponent("operator.pem").path, key: other.appendingPathComponent("operator-key.pem").path)
            await #expect(throws: (any Error).self) { _ = try await admin.request(.GET, "whoami", client: rogue) }
            try await rogue.shutdown()
            // The operator's certificate works.
            let whoami = try await admin.request(.GET, "whoami")
            #expect(whoami.status == 200)
            let subject = try #require(whoami.json["operator"] as? String)
            #expect(subject.contains("CN=operator"))
            // The public listener has no admin routes.
            let publicAttempt = try await admin.server.post("/admin/v1/holders")
            #expect(publicAttempt.status == 404)
        }
    }

    @Test("holders: create, duplicate refused, show, list, invite, credentials; every action audited with the operator")
    func holders() async throws {
        let fixture = try TestToken()
        // A clock years away from the real one: the invitation's expiry comes from the service's clock, not the calendar.
        let clock = TestClock(Date(timeIntervalSince1970: 2_000_000_000))  // 2033-05-18
        try await AdminServer.with(fixture, clock: clock.serviceClock) { admin in
            let body = Self.holderBody()
            let created = try await admin.request(.POST, "holders", body)
            #expect(created.status == 201, "\(created.json)")
            let id = try #require(created.json["id"] as? String)
            #expect(created.json["state"] as? String == "created")
            #expect(created.json["passwordHash"] == nil)
            var duplicate = Self.holderBody()
            duplicate["email"] = body["email"]
            let refused = try await admin.request(.POST, "holders", duplicate)
            #expect(refused.status == 409)
            #expect(refused.error == "conflict")
            let invalid = try await admin.request(.POST, "holders", ["givenName": "x"])
            #expect(invalid.status == 400)

            let shown = try await admin.request(.GET, "holders/\(id)")
            #expect(shown.status == 200)
            #expect(shown.json["fiscalCode"] as? String == body["fiscalCode"] as? String)
            #expect(try await admin.request(.GET, "holders/h-nobody").status == 404)
            let list = try await admin.request(.GET, "holders")
            #expect((list.json["holders"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [id])

            let mobile = "+39348\(Int.random(in: 1_000_000...9_999_999))"
            let changed = try await admin.request(.PUT, "holders/\(id)/mobile", ["mobile": mobile])
            #expect(changed.status == 200, "\(changed.json)")
            #expect(changed.json["mobile"] as? String == mobile)
            #expect(try await admin.request(.PUT, "holders/\(id)/mobile", ["mobile": "3331234"]).status == 400)
            let other = try await admin.request(.POST, "holders", Self.holderBody())
            let taken = try await admin.request(.PUT, "holders/\(id)/mobile", ["mobile": other.json["mobile"] as? String ?? ""])
            #expect(taken.status == 409)

            // Enrolment: no invitation before recognition, no skipped steps, every step audited.
            let early = try await admin.request(.POST, "holders/\(id)/invite")
            #expect(early.status == 409 && early.error == "illegal_transition", "\(early.json)")
            let skip = try await admin.request(.POST, "holders/\(id)/state", ["state": "recognized"])
            #expect(skip.status == 409 && skip.error == "illegal_transition")
            #expect(try await admin.request(.POST, "holders/\(id)/state", ["state": "active"]).error == "illegal_transition")
            #expect(try await admin.request(.POST, "holders/\(id)/state", ["state": "flying"]).status == 400)
            for step in ["payment_registered", "awaiting_processing", "awaiting_documents", "recognized"] {
                let moved = try await admin.request(.POST, "holders/\(id)/state", ["state": step])
                #expect(moved.status == 200 && moved.json["state"] as? String == step, "\(moved.json)")
            }
            let transitions = try await admin.server.services.store.auditRecords().filter { $0.event.action == "holder.transition" && $0.event.target == id }
            #expect(transitions.map(\.event.outcome) == ["refused", "refused", "ok", "ok", "ok", "ok"])
            #expect(transitions.allSatisfy { $0.event.actor.contains("CN=operator") })
            let invite = try await admin.request(.POST, "holders/\(id)/invite")
            #expect(invite.status == 201)
            let code = try #require(invite.json["activationCode"] as? String)
            #expect(code.count >= 32)
            var utc = Calendar(identifier: .gregorian)
            utc.timeZone = TimeZone(identifier: "UTC")!
            #expect((invite.json["expiresAt"] as? String)?.hasPrefix(String(utc.component(.year, from: clock.now) + 1) + "-05-18") == true, "\(invite.json)")
            #expect(try await admin.request(.GET, "holders/\(id)").json["state"] as? String == "invited")
            let credentials = try await admin.request(.GET, "holders/\(id)/credentials")
            #expect((credentials.json["credentials"] as? [Any])?.isEmpty == true)

            let records = try await admin.server.services.store.auditRecords()
            let create = try #require(records.first { $0.event.action == "holder.create" && $0.event.outcome == "ok" })
            #expect(create.event.actor.contains("CN=operator"))
            #expect(create.event.target == id)
            #expect(records.contains { $0.event.action == "holder.invite" && $0.event.actor.contains("CN=operator") })
            #expect(!records.contains { $0.event.details.contains(code) })
        }
    }

    @Test("unlock resets the failure counters")
    func unlock() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            let account = try await admin.server.activate()
            let store = admin.server.services.store
            for _ in 0..<Lockout.limit { try await store.recordWrongAnswer(holderID: account.holder.id, secret: .password) }
            try await store.recordWrongAnswer(holderID: account.holder.id, secret: .otp)
            // Locked: the right password answers like a wrong one.
            #expect(try await admin.server.post("/csc/v1/auth/login", basic: (account.username, account.password)).status == 401)
            let before = try await admin.request(.GET, "holders/\(account.holder.id)/credentials")
            let listed = try #require((before.json["credentials"] as? [[String: Any]])?.first)
            #expect(listed["locked"] as? Bool == true)
            #expect(listed["passwordFailures"] as? Int == Lockout.limit && listed["otpFailures"] as? Int == 1)
            let unlocked = try await admin.request(.POST, "credentials/\(account.credential.id)/unlock")
            #expect(unlocked.status == 200)
            #expect(unlocked.json["locked"] as? Bool == false)
            #expect(unlocked.json["passwordFailures"] as? Int == 0)
            #expect(unlocked.json["otpFailures"] as? Int == 0)
            // The holder can log in again.
            let login = try await admin.server.post("/csc/v1/auth/login", basic: (account.username, account.password))
            #expect(login.status == 200)
            #expect(try await admin.request(.POST, "credentials/c-nothing/unlock").status == 404)
        }
    }

    @Test("suspension blocks authorize and signHash with a clear CSC error, kills SADs, and reinstate restores use")
    func suspendAndReinstate() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            let server = admin.server
            var account = try await server.activate()
            let id = account.credential.id
            let token = try #require(try await server.post("/csc/v1/auth/login", basic: (account.username, account.password)).json["access_token"] as? String)
            let digest = Array(SHA256.hash(data: Data("contract".utf8)))
            let sad = try #require(try await server.post("/csc/v1/credentials/authorize", [
                "credentialID": id, "numSignatures": 1, "hash": [b64(digest)], "PIN": account.password, "OTP": account.nextOTP(),
            ], bearer: token).json["SAD"] as? String)

            let suspended = try await admin.request(.POST, "credentials/\(id)/suspend")
            #expect(suspended.status == 200)
            #expect(suspended.json["status"] as? String == "suspended")
            // The SAD issued before died with the suspension.
            let sign = try await server.post("/csc/v1/signatures/signHash", ["credentialID": id, "SAD": sad, "hash": [b64(digest)], "signAlgo": "1.2.840.10045.4.3.2"], bearer: token)
            #expect(sign.status == 400)
            let refusedOTP = await account.nextOTP()
            let authorize = try await server.post("/csc/v1/credentials/authorize", [
                "credentialID": id, "numSignatures": 1, "hash": [b64(digest)], "PIN": account.password, "OTP": refusedOTP,
            ], bearer: token)
            #expect(authorize.status == 403)
            #expect(authorize.error == "credential_disabled")
            #expect((authorize.json["error_description"] as? String)?.contains("suspended") == true)
            let info = try await server.post("/csc/v1/credentials/info", ["credentialID": id], bearer: token)
            #expect((info.json["key"] as? [String: Any])?["status"] as? String == "disabled")
            #expect((info.json["cert"] as? [String: Any])?["status"] as? String == "suspended")
            #expect(try await admin.request(.POST, "credentials/\(id)/suspend").status == 409)

            let reinstated = try await admin.request(.POST, "credentials/\(id)/reinstate")
            #expect(reinstated.status == 200)
            #expect(reinstated.json["status"] as? String == "active")
            #expect(try await admin.request(.POST, "credentials/\(id)/reinstate").status == 409)
            // The refused call did not consume its HOTP code: the same code authorizes now, at the first try.
            let authorized = try await server.post("/csc/v1/credentials/authorize", [
                "credentialID": id, "numSignatures": 1, "hash": [b64(digest)], "PIN": account.password, "OTP": refusedOTP,
            ], bearer: token)
            #expect(authorized.status == 200, "\(authorized.json)")
            let newSAD = try #require(authorized.json["SAD"] as? String)
            let signed = try await server.post("/csc/v1/signatures/signHash", ["credentialID": id, "SAD": newSAD, "hash": [b64(digest)], "signAlgo": "1.2.840.10045.4.3.2"], bearer: token)
            #expect(signed.status == 200, "\(signed.json)")
            let records = try await server.services.store.auditRecords()
            #expect(records.contains { $0.event.action == "credential.suspend" && $0.event.actor.contains("CN=operator") && $0.event.target == id })
            #expect(records.contains { $0.event.action == "credential.reinstate" && $0.event.actor.contains("CN=operator") })
        }
    }

    @Test("revocation: irreversible, key destroyed in the token (or its wrapped copy deleted), SADs dead, CSC refuses to sign", arguments: HolderKeyStorage.allCases)
    func revoke(holderKeys: HolderKeyStorage) async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture, holderKeys: holderKeys) { admin in
            let server = admin.server
            var account = try await server.activate()
            let id = account.credential.id
            let token = try #require(try await server.post("/csc/v1/auth/login", basic: (account.username, account.password)).json["access_token"] as? String)
            let digest = Array(SHA256.hash(data: Data("deed".utf8)))
            let sad = try #require(try await server.post("/csc/v1/credentials/authorize", [
                "credentialID": id, "numSignatures": 1, "hash": [b64(digest)], "PIN": account.password, "OTP": account.nextOTP(),
            ], bearer: token).json["SAD"] as? String)
            #expect(try await HolderKeyProbe.exists(id, store: server.services.store, token: fixture.token))
            #expect((account.credential.wrappedKey != nil) == (holderKeys == .wrapped))

            let badReason = try await admin.request(.POST, "credentials/\(id)/revoke", ["reason": "boredom"])
            #expect(badReason.status == 400)
            #expect(try await admin.request(.POST, "credentials/c-unknown/revoke", ["reason": "unspecified"]).status == 404)
            let revoked = try await admin.request(.POST, "credentials/\(id)/revoke", ["reason": "keyCompromise"])
            #expect(revoked.status == 200, "\(revoked.json)")
            #expect(revoked.json["status"] as? String == "revoked")
            #expect(revoked.json["revocationReason"] as? String == "keyCompromise")
            #expect(revoked.json["revokedAt"] as? String != nil)

            // The key (private and public objects) is gone from the token.
            #expect(try await !fixture.token.containsKey(id: account.credential.tokenKeyID))
            #expect(try await fixture.token.destroyKeyPair(id: account.credential.tokenKeyID) == 0)
            // ... and no wrapped copy is left in the database.
            #expect(try await server.services.store.credential(id: id)?.wrappedKey == nil)
            #expect(try await !HolderKeyProbe.exists(id, store: server.services.store, token: fixture.token))
            // The SAD issued before cannot sign, and no new authorization is given.
            let sign = try await server.post("/csc/v1/signatures/signHash", ["credentialID": id, "SAD": sad, "hash": [b64(digest)], "signAlgo": "1.2.840.10045.4.3.2"], bearer: token)
            #expect(sign.status == 400)
            let authorize = try await server.post("/csc/v1/credentials/authorize", [
                "credentialID": id, "numSignatures": 1, "hash": [b64(digest)], "PIN": account.password, "OTP": account.nextOTP(),
            ], bearer: token)
            #expect(authorize.status == 403)
            #expect((authorize.json["error_description"] as? String)?.contains("revoked") == true)
            // Irreversible.
            let reinstate = try await admin.request(.POST, "credentials/\(id)/reinstate")
            #expect(reinstate.status == 409)
            #expect((reinstate.json["error_description"] as? String)?.contains("irreversible") == true)
            #expect(try await admin.request(.POST, "credentials/\(id)/suspend").status == 409)
            #expect(try await admin.request(.POST, "credentials/\(id)/revoke", ["reason": "superseded"]).status == 409)
            let stored = try #require(try await server.services.store.credential(id: id))
            #expect(stored.status == .revoked)
            #expect(stored.revocationReason == .keyCompromise)
            let records = try await server.services.store.auditRecords()
            #expect(records.contains { $0.event.action == "credential.revoke" && $0.event.outcome == "ok" && $0.event.actor.contains("CN=operator") && $0.event.details.contains("keyCompromise") })
        }
    }

    @Test("audit export gives JSON lines; verify says intact on an untouched log")
    func auditExportAndVerify() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            _ = try await admin.request(.POST, "holders", Self.holderBody())
            let verify = try await admin.request(.GET, "audit/verify")
            #expect(verify.status == 200)
            #expect(verify.json["intact"] as? Bool == true)
            let export = try await admin.request(.GET, "audit/export")
            #expect(export.status == 200)
            let lines = String(decoding: export.data, as: UTF8.self).split(separator: "\n")
            #expect(lines.count >= 2)
            let last = try #require(try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any])
            #expect(last["action"] as? String == "audit.verify")
            #expect(last["prevHash"] as? String != nil)
        }
    }

    /// Writes a few audit events, checks the chain, tampers with the file, checks again.
    func detects(_ tampering: String) async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            for _ in 0..<3 { #expect(try await admin.request(.POST, "holders", Self.holderBody()).status == 201) }
            #expect(try await admin.request(.GET, "audit/verify").json["intact"] as? Bool == true)
            try admin.tamper(tampering)
            let verify = try await admin.request(.GET, "audit/verify")
            #expect(verify.status == 200)
            #expect(verify.json["intact"] as? Bool == false, "\(verify.json)")
            #expect(verify.json["problem"] as? String != nil)
            // Still detected after more events were appended (including the verification's own record).
            _ = try await admin.request(.POST, "holders", Self.holderBody())
            #expect(try await admin.request(.GET, "audit/verify").json["intact"] as? Bool == false)
        }
    }

    @Test("audit verify detects an edited row")
    func editedRow() async throws {
        try await self.detects("UPDATE audit_events SET actor = 'someone else' WHERE seq = 2")
    }

    @Test("audit verify detects a deleted middle row")
    func deletedMiddleRow() async throws {
        try await self.detects("DELETE FROM audit_events WHERE seq = 2")
    }

    @Test("audit verify detects deleted last rows")
    func deletedLastRow() async throws {
        try await self.detects("DELETE FROM audit_events WHERE seq >= (SELECT MAX(seq) - 1 FROM audit_events)")
    }

    @Test("audit verify detects reordered rows")
    func reorderedRows() async throws {
        try await self.detects("UPDATE audit_events SET seq = -1 WHERE seq = 2; UPDATE audit_events SET seq = 2 WHERE seq = 3; UPDATE audit_events SET seq = 3 WHERE seq = -1;")
    }
}
