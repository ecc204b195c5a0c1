import Foundation
import CSCProtocol
import SigilloDomain
import SigilloTestSupport
import Testing

/// Issue 11, items 4 and 5, against the live listeners: a new invitation voids the earlier codes; a holder closed for
/// good can be ordered again, history kept.
@Suite("Re-invitation and re-enrolment")
struct ReenrolmentTests {
    /// Begins and completes an activation over the public JSON routes with a TOTP app; returns the completion's answer.
    static func activate(_ server: LiveServer, code: String, username: String) async throws -> CSCResponse {
        let begun = try await server.post("/activation/v1/begin", ["code": code, "device": "totp"])
        let secret = try #require((begun.json["secret"] as? String).flatMap(Base32.decode), "\(begun.json)")
        return try await server.post("/activation/v1/complete", ["code": code, "username": username, "password": "correct horse battery",
                                                                 "otp": TOTP.code(secret: secret, time: Date())])
    }

    @Test("after a second invite the first code answers exactly as a code never issued; the second activates")
    func reInvitation() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            let server = admin.server
            var body = AdminTests.holderBody()
            body["recognized"] = true
            let id = try #require(try await admin.request(.POST, "holders", body).json["id"] as? String)
            let first = try #require(try await admin.request(.POST, "holders/\(id)/invite").json["activationCode"] as? String)
            let second = try #require(try await admin.request(.POST, "holders/\(id)/invite").json["activationCode"] as? String)
            #expect(first != second)

            let never = Base32.encode((0..<20).map { _ in UInt8.random(in: 0...255) }, padding: false)
            for route in ["/activation/v1/begin"] {
                let old = try await server.post(route, ["code": first, "device": "totp"])
                let unknown = try await server.post(route, ["code": never, "device": "totp"])
                #expect(old.status == 404 && old.error == "not_found", "\(old.json)")
                #expect(old.status == unknown.status)
                #expect(NSDictionary(dictionary: old.json) == NSDictionary(dictionary: unknown.json), "\(old.json) vs \(unknown.json)")
            }
            let completeOld = try await server.post("/activation/v1/complete", ["code": first, "username": "first-code", "password": "correct horse battery", "otp": "123456"])
            #expect(completeOld.status == 404 && completeOld.error == "not_found")

            let done = try await Self.activate(server, code: second, username: "giulia-\(id.suffix(6))")
            #expect(done.status == 201, "\(done.json)")
            let invites = try await server.services.store.auditRecords().filter { $0.event.action == "holder.invite" && $0.event.target == id }
            #expect(invites.map(\.event.details) == ["from=recognized to=invited voided=0", "from=invited to=invited voided=1"])
        }
    }

    @Test("an operator closes a holder for good; the same person (fiscal code, email, mobile) is ordered again (201), history stays, the old username stays taken")
    func reEnrolment() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            let server = admin.server
            let account = try await server.activate()
            let old = account.holder
            let person: [String: Any] = ["givenName": old.givenName, "surname": old.surname, "fiscalCode": old.fiscalCode, "email": old.email,
                                         "mobile": old.mobile, "recognized": true]
            // While the holder is open, the same person is refused.
            let early = try await admin.request(.POST, "holders", person)
            #expect(early.status == 409 && early.error == "conflict", "\(early.json)")

            let closed = try await admin.request(.POST, "holders/\(old.id)/revoke", ["reason": "cessationOfOperation"])
            #expect(closed.status == 200 && closed.json["state"] as? String == "revoked", "\(closed.json)")
            let created = try await admin.request(.POST, "holders", person)
            #expect(created.status == 201, "\(created.json)")
            let id = try #require(created.json["id"] as? String)
            #expect(id != old.id && created.json["fiscalCode"] as? String == old.fiscalCode && created.json["state"] as? String == "recognized")
            // A third order for the same person, while the new one is open: refused again.
            #expect(try await admin.request(.POST, "holders", person).status == 409)

            // History: both holders listed, the old one closed with its (revoked) credential and its audit trail.
            let holders = try #require(try await admin.request(.GET, "holders").json["holders"] as? [[String: Any]])
            #expect(Set(holders.compactMap { $0["id"] as? String }) == [old.id, id])
            let listedOld = try #require(holders.first { $0["id"] as? String == old.id })
            #expect(listedOld["state"] as? String == "revoked" && listedOld["username"] as? String == account.username)
            let credentials = try #require(try await admin.request(.GET, "holders/\(old.id)/credentials").json["credentials"] as? [[String: Any]])
            #expect(credentials.compactMap { $0["id"] as? String } == [account.credential.id])
            #expect(credentials.first?["status"] as? String == "revoked")
            let records = try await server.services.store.auditRecords()
            #expect(records.contains { $0.event.action == "holder.create" && $0.event.target == old.id })
            #expect(records.contains { $0.event.action == "activation.complete" && $0.event.target == account.credential.id })
            #expect(records.contains { $0.event.action == "holder.create" && $0.event.target == id && $0.event.outcome == "ok" })

            // The new order activates, but not under the closed holder's username.
            let code = try #require(try await admin.request(.POST, "holders/\(id)/invite").json["activationCode"] as? String)
            let reused = try await Self.activate(server, code: code, username: account.username)
            #expect(reused.status == 409 && reused.error == "conflict", "\(reused.json)")
            let done = try await Self.activate(server, code: code, username: account.username + "-2")
            #expect(done.status == 201, "\(done.json)")
            let login = try await server.post("/csc/v1/auth/login", basic: (account.username + "-2", "correct horse battery"))
            #expect(login.status == 200)
            // Lookups by contact details find the live holder (a username reminder goes to the new account).
            #expect(try await server.services.store.holder(email: old.email)?.id == id)
            #expect(try await server.services.store.holder(mobile: old.mobile)?.id == id)
            #expect(try await admin.request(.GET, "holders/\(old.id)").json["state"] as? String == "revoked")
        }
    }
}
