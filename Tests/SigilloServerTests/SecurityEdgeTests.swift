import Crypto
import Foundation
import SigilloDomain
import SigilloSQLite
import SigilloTestSupport
import Testing

/// Issue 18: races with one valid code, and the PIN lock at authorize, tried from outside against a live TLS server (the
/// concurrent requests as in `SoleControlTests`, each on its own connection). The server runs on a `TestClock`.
@Suite("Security edges over TLS: one valid OTP raced, the PIN lock at authorize")
struct SecurityEdgeServerTests {
    /// `count` authorize requests at once for `account`, each with `otp` and `password`.
    static func authorizeConcurrently(_ server: LiveServer, _ account: LiveServer.Account, token: String, otp: String, password: String? = nil,
                                      count: Int) async throws -> [(status: Int, json: [String: Any])] {
        let hash = b64(Array(SHA256.hash(data: Data("raced".utf8))))
        let (credentialID, pin) = (account.credential.id, password ?? account.password)
        return try await SoleControlTests.concurrently(server, count) { _ in
            ("/csc/v1/credentials/authorize", ["credentialID": credentialID, "numSignatures": 1, "hash": [hash], "PIN": pin, "OTP": otp], nil, token)
        }
    }

    /// More requests than the lock's limit: the losers' replays count as wrong answers, so some of them may be told
    /// otp_locked (or, while five checks are in flight, too_many_requests) instead of invalid_otp; exactly one succeeds.
    static let racers = 12

    @Test("12 requests racing with the same valid code (HOTP counter, TOTP step): exactly one SAD, the others refused", arguments: [OTPKind.hotp, .totp])
    func sameCodeRaced(kind: OTPKind) async throws {
        let fixture = try TestToken()
        let clock = TestClock()
        try await LiveServer.with(fixture, clock: clock.serviceClock) { server in
            // The activation's app reads the real clock: bring the server's up to it (the set-up above may take longer
            // than a TOTP step on a loaded machine).
            clock.advance(max(0, Date().timeIntervalSince(clock.now)))
            let account = try await server.activate(name: "Gara", device: kind)
            let token = try await SoleControlTests.login(server, account)
            // Past any step the activation used (its app ran on the real clock, within a step of this one).
            clock.advance(90)
            let code = kind == .hotp ? HOTP.code(secret: account.secret, counter: account.counter) : TOTP.code(secret: account.secret, time: clock.now)
            let answers = try await Self.authorizeConcurrently(server, account, token: token, otp: code, count: Self.racers)
            #expect(answers.filter { $0.status == 200 }.count == 1, "\(answers.map(\.status))")
            let refusals = ["invalid_otp", "otp_locked", "too_many_requests"]
            #expect(answers.filter { $0.status != 200 && refusals.contains($0.json["error"] as? String ?? "") }.count == Self.racers - 1, "\(answers.map(\.json))")
            let granted = try await SoleControlTests.audit(server, "credential.authorize").filter { $0.event.outcome == "ok" }
            #expect(granted.count == 1)
        }
    }

    @Test("30 concurrent wrong PINs at authorize: exactly 5 evaluated, the rest pin_locked; then the right PIN and a valid OTP get pin_locked too")
    func pinLockAtAuthorize() async throws {
        let fixture = try TestToken()
        let clock = TestClock()
        try await LiveServer.with(fixture, clock: clock.serviceClock) { server in
            var account = try await server.activate(name: "Pina", device: .hotp)
            let token = try await SoleControlTests.login(server, account)
            let hash = b64(Array(SHA256.hash(data: Data("doc".utf8))))
            let credentialID = account.credential.id
            let answers = try await SoleControlTests.concurrently(server) { index in
                ("/csc/v1/credentials/authorize", ["credentialID": credentialID, "numSignatures": 1, "hash": [hash], "PIN": "wrong password \(index)", "OTP": "123456"], nil, token)
            }
            // The fifth wrong answer locks (and says so); every later one is refused unverified.
            #expect(answers.filter { $0.status == 400 && $0.json["error"] as? String == "invalid_pin" }.count == Lockout.limit - 1, "\(answers.map(\.json))")
            #expect(answers.filter { $0.status == 403 && $0.json["error"] as? String == "pin_locked" }.count == 30 - (Lockout.limit - 1), "\(answers.map(\.json))")
            let failures = try await server.services.store.secretFailures(holderID: account.holder.id)
            #expect(failures.password == Lockout.limit && failures.otp == 0)
            let authorizations = try await SoleControlTests.audit(server, "credential.authorize")
            #expect(authorizations.filter { $0.event.details.hasPrefix("wrong password (") }.count == Lockout.limit)

            let right = try await server.post("/csc/v1/credentials/authorize", ["credentialID": credentialID, "numSignatures": 1, "hash": [hash],
                                                                               "PIN": account.password, "OTP": await account.nextOTP()], bearer: token)
            #expect(right.status == 403 && right.error == "pin_locked", "\(right.json)")
            // Locked, auth/login answers the right password like an unknown username.
            let login = try await server.post("/csc/v1/auth/login", basic: (account.username, account.password))
            let unknown = try await server.post("/csc/v1/auth/login", basic: ("nobody-at-all", account.password))
            #expect(login.status == 401 && NSDictionary(dictionary: login.json).isEqual(to: unknown.json), "\(login.json) vs \(unknown.json)")
        }
    }
}
