import Crypto
import Foundation
import SigilloDomain
import SigilloSQLite
import SigilloTestSupport
import Testing

/// Issue 11: sole control under attack, tried from outside against a live TLS server. Races use 30 truly concurrent
/// clients (one connection each) and count what was evaluated in the store and the audit, never time.
@Suite("Sole control under attack: lockout races, the OTP lock on every route, no enumeration, SMS purposes, SAD life, renewals, rebind")
struct SoleControlTests {
    /// `count` requests at once, each on its own TLS connection (`ConcurrentClient`); answers in completion order.
    static func concurrently(_ server: LiveServer, _ count: Int = 30, _ request: @escaping @Sendable (Int) -> (path: String, body: [String: Any], basic: (String, String)?, bearer: String?))
        async throws -> [(status: Int, json: [String: Any])] {
        let client = ConcurrentClient(server)
        let answers = try await withThrowingTaskGroup(of: LimitedAnswer.self) { group in
            for index in 0..<count {
                group.addTask {
                    let (path, body, basic, bearer) = request(index)
                    var headers: [(String, String)] = []
                    if let basic { headers.append(("Authorization", "Basic " + Data("\(basic.0):\(basic.1)".utf8).base64EncodedString())) }
                    if let bearer { headers.append(("Authorization", "Bearer \(bearer)")) }
                    return try await client.send(path, json: body, headers: headers)
                }
            }
            var all: [LimitedAnswer] = []
            for try await answer in group { all.append(answer) }
            return all
        }
        try await client.shutdown()
        return answers.map { answer in
            (status: answer.status, json: answer.bytes.isEmpty ? [:] : ((try? JSONSerialization.jsonObject(with: Data(answer.bytes))) as? [String: Any] ?? [:]))
        }
    }

    static func login(_ server: LiveServer, _ account: LiveServer.Account) async throws -> String {
        try #require(try await server.post("/csc/v1/auth/login", basic: (account.username, account.password)).json["access_token"] as? String)
    }

    static func audit(_ server: LiveServer, _ action: String) async throws -> [AuditRecord] {
        try await server.services.store.auditRecords().filter { $0.event.action == action }
    }

    @Test("30 concurrent wrong passwords: exactly 5 evaluated, the rest refused unverified; locked answers like unknown, at the same Argon2id cost")
    func loginRace() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Vera", device: .hotp)
            let passwords = server.services.domain.passwords
            let before = passwords.verifications
            let answers = try await Self.concurrently(server) { index in ("/csc/v1/auth/login", [:], (account.username, "wrong password \(index)"), nil) }
            #expect(answers.allSatisfy { $0.status == 401 }, "\(answers.map(\.status))")
            #expect(Set(answers.compactMap { $0.json["error"] as? String }).count == 1)
            // Five attempts counted and verified; 25 refused by the reservation (each still spends one decoy verification).
            #expect(try await server.services.store.secretFailures(holderID: account.holder.id).password == Lockout.limit)
            let logins = try await Self.audit(server, "login")
            #expect(logins.filter { $0.event.details.hasPrefix("wrong password (") }.count == Lockout.limit)
            #expect(logins.filter { $0.event.details == "password locked" }.count == 30 - Lockout.limit)
            #expect(passwords.verifications - before == 30)

            // The right password now answers exactly like an unknown username, and both cost one verification.
            let counted = passwords.verifications
            let locked = try await server.post("/csc/v1/auth/login", basic: (account.username, account.password))
            let unknown = try await server.post("/csc/v1/auth/login", basic: ("nobody-at-all", account.password))
            #expect(locked.status == 401 && unknown.status == 401)
            #expect(NSDictionary(dictionary: locked.json).isEqual(to: unknown.json), "\(locked.json) vs \(unknown.json)")
            #expect(passwords.verifications - counted == 2)
            // The holder learns of the lock by mail.
            #expect(try await server.services.store.mails().contains { $0.recipient == account.holder.email && $0.subject.contains("bloccato") })
        }
    }

    @Test("failures count consecutively: 4 wrong, 1 right, 1 wrong leaves the account open")
    func consecutive() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Ugo", device: .hotp)
            for _ in 0..<4 { #expect(try await server.post("/csc/v1/auth/login", basic: (account.username, "not the password")).status == 401) }
            #expect(try await server.post("/csc/v1/auth/login", basic: (account.username, account.password)).status == 200)
            #expect(try await server.post("/csc/v1/auth/login", basic: (account.username, "not the password")).status == 401)
            #expect(try await server.services.store.secretFailures(holderID: account.holder.id).password == 1)
            #expect(try await server.post("/csc/v1/auth/login", basic: (account.username, account.password)).status == 200)
        }
    }

    @Test("30 concurrent wrong OTPs at authorize: exactly 5 evaluated; then revoke, password reset and mobile change refuse the right OTP too")
    func otpLockOnEveryRoute() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            var account = try await server.activate(name: "Rita", device: .hotp)
            let token = try await Self.login(server, account)
            let hash = b64(Array(SHA256.hash(data: Data("doc".utf8))))
            let (credentialID, password) = (account.credential.id, account.password)
            let answers = try await Self.concurrently(server) { index in
                ("/csc/v1/credentials/authorize", ["credentialID": credentialID, "numSignatures": 1, "hash": [hash], "PIN": password,
                                                   "OTP": String(format: "%06d", 100_000 + index)], nil, token)
            }
            #expect(answers.filter { $0.json["error"] as? String == "invalid_otp" }.count == Lockout.limit - 1)
            #expect(answers.filter { $0.json["error"] as? String == "otp_locked" }.count == 30 - (Lockout.limit - 1))
            #expect(try await server.services.store.secretFailures(holderID: account.holder.id).otp == Lockout.limit)
            let authorizations = try await Self.audit(server, "credential.authorize")
            #expect(authorizations.filter { $0.event.details.hasPrefix("wrong otp (") }.count == Lockout.limit)

            // Every other route that takes an OTP refuses the right one while locked.
            let right = await account.nextOTP()
            let authorize = try await server.post("/csc/v1/credentials/authorize", ["credentialID": account.credential.id, "numSignatures": 1, "hash": [hash],
                                                                                   "PIN": account.password, "OTP": right], bearer: token)
            #expect(authorize.status == 403 && authorize.error == "otp_locked")
            let revoke = try await server.post("/selfservice/v1/revoke", ["username": account.username, "password": account.password, "otp": await account.nextOTP()])
            #expect(revoke.status == 403 && revoke.error == "otp_locked", "\(revoke.json)")
            #expect(try await server.services.store.credential(id: account.credential.id)?.status == .active)

            #expect(try await server.post("/recovery/v1/password/request", ["account": account.username]).status == 202)
            let body = try #require(try await server.services.store.mails().last { $0.recipient == account.holder.email && $0.body.contains("?code=") }?.body)
            let code = try #require(CapturingNotifier.linkCode(in: body))
            let reset = try await server.post("/recovery/v1/password/reset", ["code": code, "otp": await account.nextOTP(), "newPassword": "a brand new secret"])
            #expect(reset.status == 403 && reset.error == "otp_locked", "\(reset.json)")

            #expect(try await server.post("/recovery/v1/mobile/begin", ["username": account.username, "password": account.password, "mobile": "+393401112233"]).status == 200)
            let codes = try server.lastSMS(2)
            let mobile = try await server.post("/recovery/v1/mobile/complete", ["username": account.username, "password": account.password,
                                                                                "otp": codes[0].code, "newNumberOtp": codes[1].code])
            #expect(mobile.status == 403 && mobile.error == "otp_locked", "\(mobile.json)")
            #expect(try await server.services.store.holder(id: account.holder.id)?.mobile == account.holder.mobile)
            // Nothing was counted past the limit.
            #expect(try await server.services.store.secretFailures(holderID: account.holder.id).otp == Lockout.limit)
        }
    }

    @Test("an SMS code works only for its purpose, says what it is for, dies after 3 wrong tries; opening a reset link sends no SMS")
    func smsPurpose() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Sara", device: .sms)
            let token = try await Self.login(server, account)
            let hash = b64(Array(SHA256.hash(data: Data("doc".utf8))))
            let authorize = { (otp: String) in
                try await server.post("/csc/v1/credentials/authorize", ["credentialID": account.credential.id, "numSignatures": 1, "hash": [hash],
                                                                       "PIN": account.password, "OTP": otp], bearer: token)
            }
            #expect(try await server.post("/csc/v1/credentials/sendOTP", ["credentialID": account.credential.id], bearer: token).status == 204)
            let signing = try server.lastSMSCode()
            #expect(try server.lastSMSText().contains("authorize a signature"))
            #expect(try await server.post("/recovery/v1/mobile/begin", ["username": account.username, "password": account.password, "mobile": "+393409876543"]).status == 200)
            let change = try server.lastSMS(2)
            #expect(try server.lastSMSTexts(2)[0].contains("change your mobile number"))
            // The signature code does not change the number; the mobile change code does not authorize a signature.
            let swapped = try await server.post("/recovery/v1/mobile/complete", ["username": account.username, "password": account.password,
                                                                                 "otp": signing, "newNumberOtp": change[1].code])
            #expect(swapped.status == 400 && swapped.error == "invalid_otp")
            #expect(try await authorize(change[0].code).error == "invalid_otp")
            // The signature code still works for what it was sent for.
            #expect(try await authorize(signing).status == 200)

            // Three wrong tries kill a code: the right one is refused after them.
            #expect(try await server.post("/csc/v1/credentials/sendOTP", ["credentialID": account.credential.id], bearer: token).status == 204)
            let doomed = try server.lastSMSCode()
            for wrong in ["000001", "000002", "000003"] where wrong != doomed { #expect(try await authorize(wrong).error == "invalid_otp") }
            #expect(try await authorize(doomed).error == "invalid_otp")

            // Opening a reset link (GET) sends nothing; the button (POST) sends the code for a reset.
            #expect(try await server.post("/recovery/v1/password/request", ["account": account.username]).status == 202)
            let body = try #require(try await server.services.store.mails().last { $0.body.contains("?code=") }?.body)
            let code = try #require(CapturingNotifier.linkCode(in: body))
            let texts = try server.smsCount()
            #expect(try await server.page("/recovery/password?code=\(code)").status == 200)
            #expect(try server.smsCount() == texts)
        }
    }

    @Test("the user-code route: unknown, known and blocked usernames cost one Argon2id verification each and answer alike")
    func userCodeCost() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let holder = try await SelfServiceTests().activate(server, name: "Nina")
            let passwords = server.services.domain.passwords
            var answers: [CSCResponse] = []
            for username in ["nobody-here", holder.username] {
                let before = passwords.verifications
                answers.append(try await server.post("/selfservice/v1/suspend", ["username": username, "userCode": "AAAA-BBBB-CCCC-DDDD"]))
                #expect(passwords.verifications - before == 1, "\(username)")
            }
            for _ in 0..<(Lockout.limit - 1) { _ = try await server.post("/selfservice/v1/suspend", ["username": holder.username, "userCode": "AAAA-BBBB-CCCC-DDDD"]) }
            #expect(try await server.services.store.secretFailures(holderID: try #require(server.services.store.holder(username: holder.username)).id).userCodeBlocked)
            let before = passwords.verifications
            answers.append(try await server.post("/selfservice/v1/suspend", ["username": holder.username, "userCode": holder.userCode]))
            #expect(passwords.verifications - before == 1)
            #expect(answers.allSatisfy { $0.status == 400 && $0.error == "invalid_request" })
            #expect(Set(answers.map { "\($0.error ?? "")|\($0.json["error_description"] as? String ?? "")" }).count == 1, "\(answers.map(\.json))")
        }
    }

    @Test("30 concurrent wrong user codes: exactly 5 evaluated, and the right code is refused after them")
    func userCodeRace() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let holder = try await SelfServiceTests().activate(server, name: "Ilda")
            let username = holder.username
            let answers = try await Self.concurrently(server) { index in
                ("/selfservice/v1/suspend", ["username": username, "userCode": String(format: "AAAA-BBBB-CCCC-%04d", index)], nil, nil)
            }
            #expect(answers.allSatisfy { $0.status == 400 && $0.json["error"] as? String == "invalid_request" })
            let checks = try await Self.audit(server, "usercode.check")
            #expect(checks.filter { $0.event.details.hasPrefix("wrong user code (") }.count == Lockout.limit)
            let right = try await server.post("/selfservice/v1/suspend", ["username": username, "userCode": holder.userCode])
            #expect(right.status == 400 && right.error == "invalid_request")
            let stored = try #require(try await server.services.store.holder(username: username))
            #expect(try await server.services.store.credentials(holderID: stored.id).allSatisfy { $0.status == .active })
        }
    }

    @Test("extendTransaction: each extension audited, never past 30 minutes from authorization")
    func sadLifetime() async throws {
        let fixture = try TestToken()
        let clock = TestClock()
        try await LiveServer.with(fixture, clock: clock.serviceClock) { server in
            var account = try await server.activate(name: "Elsa", device: .hotp)
            let token = try await Self.login(server, account)
            let hash = b64(Array(SHA256.hash(data: Data("doc".utf8))))
            let granted = try await server.post("/csc/v1/credentials/authorize", ["credentialID": account.credential.id, "numSignatures": 1, "hash": [hash],
                                                                                 "PIN": account.password, "OTP": await account.nextOTP()], bearer: token)
            let sad = try #require(granted.json["SAD"] as? String)
            var extensions = 0
            while true {
                clock.advance(240)
                // A fresh bearer token each time: the SAD's life is what is under test, not the session's.
                let session = try await Self.login(server, account)
                let extended = try await server.post("/csc/v1/credentials/extendTransaction", ["credentialID": account.credential.id, "SAD": sad], bearer: session)
                guard extended.status == 200 else {
                    #expect(extended.error == "invalid_request" && (extended.json["error_description"] as? String)?.contains("expired") == true, "\(extended.json)")
                    break
                }
                extensions += 1
                #expect(extensions < 20)
            }
            // 30 minutes = 7 extensions of 4 minutes (the 8th lands after the cap).
            #expect(extensions == 7)
            let audited = try await Self.audit(server, "credential.extendTransaction")
            #expect(audited.filter { $0.event.outcome == "ok" }.count == 7 && audited.filter { $0.event.outcome == "refused" }.count == 1)
        }
    }

    @Test("two renewals racing with consecutive codes: exactly one new credential")
    func renewalRace() async throws {
        let fixture = try TestToken()
        let clock = TestClock(Date().addingTimeInterval(-3 * 365 * 86_400))
        try await LiveServer.with(fixture, clock: clock.serviceClock) { server in
            var account = try await server.activate(name: "Leo", device: .hotp)
            clock.advance(account.credential.notAfter.timeIntervalSince(clock.now) - 30 * 86_400)
            var codes: [String] = []
            for _ in 0..<2 { codes.append(await account.nextOTP()) }
            let (username, password, both) = (account.username, account.password, codes)
            let answers = try await Self.concurrently(server, 2) { index in ("/selfservice/v1/renew", ["username": username, "password": password, "otp": both[index]], nil, nil) }
            #expect(answers.filter { $0.status == 201 }.count == 1, "\(answers.map(\.json))")
            let credentials = try await server.services.store.credentials(holderID: account.holder.id)
            #expect(credentials.filter { $0.status == .active }.count == 1 && credentials.count == 2)
        }
    }

    @Test("device rebind needs the mailbox: password + user code only mail a link; the link chooses the device; both channels are told")
    func rebindNeedsPossession() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let holder = try await SelfServiceTests().activate(server, name: "Pina")
            let begun = try await server.post("/recovery/v1/device/begin", ["username": holder.username, "password": "correct horse battery", "userCode": holder.userCode,
                                                                           "device": "hotp", "serial": "X1", "seed": String(repeating: "ab", count: 20)])
            #expect(begun.status == 202 && begun.json["secret"] == nil && begun.json["token"] == nil, "\(begun.json)")
            let mail = try #require(try await server.services.store.mails().last { $0.body.contains("/recovery/device/confirm?code=") })
            let code = try #require(CapturingNotifier.linkCode(in: mail.body))
            // Opening the link changes nothing; a caller-supplied seed is refused; the app is accepted.
            #expect(try await server.page("/recovery/device/confirm?code=\(code)").status == 200)
            let seeded = try await server.post("/recovery/v1/device/confirm", ["code": code, "device": "hotp", "serial": "X1", "seed": String(repeating: "ab", count: 20)])
            #expect(seeded.status == 400)
            let confirmed = try await server.post("/recovery/v1/device/confirm", ["code": code, "device": "totp"])
            #expect(confirmed.status == 201, "\(confirmed.json)")
            let again = try await server.post("/recovery/v1/device/confirm", ["code": code, "device": "totp"])
            #expect(again.status == 410)
            var app = TOTPDevice(secret: try #require((confirmed.json["secret"] as? String).flatMap(Base32.decode)))
            let rebindToken = try #require(confirmed.json["token"] as? String)
            let done = try await server.post("/recovery/v1/device/complete", ["token": rebindToken, "otp": await app.next()])
            #expect(done.status == 200, "\(done.json)")
            let stored = try #require(try await server.services.store.holder(username: holder.username))
            #expect(try await server.services.store.mails().last?.subject.contains("nuovo dispositivo OTP") == true)
            #expect(try server.lastSMSTexts(1).first?.contains("new OTP device") == true && server.lastSMSRecipient() == stored.mobile)
        }
    }
}

extension LiveServer {
    /// The texts of the last `count` SMS in the development outbox file, oldest first.
    func lastSMSTexts(_ count: Int) throws -> [String] {
        try self.smsMessages().suffix(count).map { $0["body"] as? String ?? "" }
    }

    func lastSMSText() throws -> String { try self.lastSMSTexts(1).first ?? "" }

    func lastSMSRecipient() throws -> String? { try self.smsMessages().last?["recipient"] as? String }

    func smsCount() throws -> Int { try self.smsMessages().count }
}
