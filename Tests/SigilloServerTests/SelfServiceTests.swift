import Crypto
import Foundation
import PKCS11
import CSCClient
import CSCProtocol
import SigilloDomain
import SigilloPKI
import SigilloSQLite
import SigilloTestSupport
import Testing

@Suite("Holder self-service with the user code")
struct SelfServiceTests {
    /// Activates through the public route, which shows the user code once.
    func activate(_ server: LiveServer, name: String) async throws -> (username: String, credentialID: String, userCode: String, totp: TOTPDevice) {
        let service = server.services.domain
        let holder = try await service.enrollment.createHolder(givenName: name, surname: "Galli", fiscalCode: TestData.fiscalCode(), email: "\(name.lowercased())@example.it",
                                                    mobile: "+39347\(Int.random(in: 1_000_000...9_999_999))", actor: "op", recognized: true)
        let invitation = try await service.enrollment.invite(holderID: holder.id, actor: "op")
        let begun = try await server.post("/activation/v1/begin", ["code": invitation.code, "device": "totp"])
        var totp = TOTPDevice(secret: try #require((begun.json["secret"] as? String).flatMap(Base32.decode)))
        let done = try await server.post("/activation/v1/complete", ["code": invitation.code, "username": name.lowercased(), "password": "correct horse battery",
                                                                     "otp": await totp.next()])
        #expect(done.status == 201)
        let userCode = try #require(done.json["userCode"] as? String)
        #expect(userCode.count == 19)
        return (name.lowercased(), try #require(done.json["credentialID"] as? String), userCode, totp)
    }

    @Test("suspend then revoke with the user code: signing stops, the key is destroyed; wrong codes are refused")
    func suspendAndRevoke() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            var holder = try await self.activate(server, name: "Lia")
            // The code is stored only as an Argon2id hash.
            #expect(try databaseBytes(server.directory.appendingPathComponent("sigillo.sqlite").path).range(of: Data(holder.userCode.utf8)) == nil)
            let wrong = try await server.post("/selfservice/v1/suspend", ["username": holder.username, "userCode": "AAAA-BBBB-CCCC-DDDD"])
            #expect(wrong.status == 400 && wrong.error == "invalid_request")
            let suspended = try await server.post("/selfservice/v1/suspend", ["username": holder.username, "userCode": holder.userCode.lowercased()])
            #expect(suspended.status == 200, "\(suspended.json)")
            #expect(suspended.json["credentials"] as? [String] == [holder.credentialID])
            let token = try #require(try await server.post("/csc/v1/auth/login", basic: (holder.username, "correct horse battery")).json["access_token"] as? String)
            let authorize = try await server.post("/csc/v1/credentials/authorize", [
                "credentialID": holder.credentialID, "numSignatures": 1, "hash": [b64(Array(SHA256.hash(data: Data("x".utf8))))],
                "PIN": "correct horse battery", "OTP": await holder.totp.next(),
            ], bearer: token)
            #expect(authorize.status == 403 && authorize.error == "credential_disabled")
            let badReason = try await server.post("/selfservice/v1/revoke", ["username": holder.username, "userCode": holder.userCode, "reason": "superseded"])
            #expect(badReason.status == 400)
            let revoked = try await server.post("/selfservice/v1/revoke", ["username": holder.username, "userCode": holder.userCode, "reason": "keyCompromise"])
            #expect(revoked.status == 200, "\(revoked.json)")
            #expect(try await !fixture.token.containsKey(id: holder.credentialID))
            let credential = try await server.services.store.credential(id: holder.credentialID)
            #expect(credential?.status == .revoked && credential?.revocationReason == .keyCompromise)
            let audit = try await server.services.store.auditRecords()
            #expect(audit.contains { $0.event.actor == "holder:\(credential!.holderID)" })
            #expect(!audit.contains { "\($0.event)".contains(holder.userCode) })
        }
    }

    @Test("five wrong user codes block it, even for the right one")
    func blocking() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let holder = try await self.activate(server, name: "Max")
            for _ in 0..<5 {
                #expect(try await server.post("/selfservice/v1/suspend", ["username": holder.username, "userCode": "WRON-GCOD-EXXX-XXXX"]).status == 400)
            }
            let blocked = try await server.post("/selfservice/v1/suspend", ["username": holder.username, "userCode": holder.userCode])
            #expect(blocked.status == 400)
            #expect(try await server.services.store.credential(id: holder.credentialID)?.status == .active)
            let unknown = try await server.post("/selfservice/v1/revoke", ["username": "nobody", "userCode": holder.userCode])
            #expect(unknown.status == 400 && unknown.error == "invalid_request")
        }
    }
}
