import Crypto
import Foundation
import PKCS11
@testable import SigilloDomain
import SigilloSQLite
import SigilloTestSupport
import Testing
import X509

/// Issue 18: behaviours at the security edges that no test covered.
@Suite("Security edges: one OTP for one action, the SAD refund when the token fails")
struct SecurityEdgeTests {
    /// The SAD as the store keeps it (by digest).
    func stored(_ fixture: ServiceFixture, _ sad: String) async throws -> SADRecord {
        try #require(try await fixture.store.sad(idHash: Array(SHA256.hash(data: Data(sad.utf8)))))
    }

    @Test("two checks racing with one valid code, both having read the device before either spent it: exactly one passes",
          arguments: [OTPKind.hotp, .totp])
    func sameCodeRaced(kind: OTPKind) async throws {
        let fixture = try await ServiceFixture()
        let holder = try await fixture.newHolder(name: "Gara")
        let invitation = try await fixture.service.enrollment.invite(holderID: holder.id, actor: "op")
        let secret: [UInt8]
        let code: () -> String
        if kind == .hotp {
            secret = Array("12345678901234567890".utf8)
            _ = try await fixture.service.enrollment.beginActivation(invitationCode: invitation.code, device: .hotp(serial: "RACE-\(UUID().uuidString.prefix(6))", secret: secret))
            _ = try await fixture.service.enrollment.completeActivation(invitationCode: invitation.code, username: "gara-\(UUID().uuidString.prefix(6).lowercased())",
                                                                        password: "correct horse battery", otp: HOTP.code(secret: secret, counter: 0))
            code = { HOTP.code(secret: secret, counter: 1) }
        } else {
            secret = try #require(try await fixture.service.enrollment.beginActivation(invitationCode: invitation.code, device: .totp()).secret)
            _ = try await fixture.service.enrollment.completeActivation(invitationCode: invitation.code, username: "gara-\(UUID().uuidString.prefix(6).lowercased())",
                                                                        password: "correct horse battery", otp: TOTP.code(secret: secret, time: fixture.clock.now))
            fixture.clock.advance(30)
            code = { TOTP.code(secret: secret, time: fixture.clock.now) }
        }
        let current = try #require(try await fixture.store.holder(id: holder.id))
        // The state of the race: both requests have read the device (counter, last step) and found the code valid; only
        // the store's compare-and-set can tell them apart now.
        let device = try #require(try await fixture.store.activeOTPDevice(holderID: holder.id))
        let verifier = fixture.service.authorization.otp
        let otp = code()
        let outcomes = await withTaskGroup(of: SigilloError.Code?.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    await errorCode { try await verifier.verify(otp, device: device, holder: current, purpose: .signature, action: "test.race", target: "race") }
                }
            }
            return await group.reduce(into: [SigilloError.Code?]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == nil }.count == 1, "\(outcomes)")
        #expect(outcomes.filter { $0 == .otpReplayed }.count == 1, "\(outcomes)")
    }

    @Test("a TOTP code spent on one route is refused on every other: authorize, password reset, renewal, revocation, each way")
    func oneCodeOneAction() async throws {
        let fixture = try await ServiceFixture()
        let active = try await fixture.activeHolder(name: "Otto")
        let service = fixture.service
        var password = active.password
        // Renewal opens 90 days before expiry: be there, so that only the OTP decides.
        fixture.clock.advance(active.credential.notAfter.timeIntervalSince(fixture.clock.now) - 50 * 86_400)
        _ = try await service.lifecycle.runLifecycleJobs()
        var credentialID = active.credential.id
        func authorize(_ otp: String) async throws {
            _ = try await service.authorization.authorize(holderID: active.holder.id, credentialID: credentialID, numSignatures: 1, hashes: [digest("one")],
                                                          hashAlgorithm: .sha256, password: password, otp: otp)
        }
        func reset(_ otp: String) async throws {
            try await service.recovery.requestPasswordReset(usernameOrEmail: active.username)
            let link = try #require(fixture.notifier.lastLinkCode)
            let newPassword = "new secret \(UUID().uuidString.prefix(6))"
            try await service.recovery.resetPassword(code: link, otp: otp, newPassword: newPassword)
            password = newPassword
        }
        func renew(_ otp: String) async throws {
            credentialID = try await service.lifecycle.renew(username: active.username, password: password, otp: otp).id
        }
        func revoke(_ otp: String) async throws {
            _ = try await service.recovery.authenticateForRevocation(username: active.username, password: password, otp: otp)
        }
        // Renewal last: after it the account is no longer expiring, and renewal would be refused for that.
        let routes: [(name: String, use: (String) async throws -> Void)] = [("authorize", authorize), ("reset", reset), ("revoke", revoke), ("renew", renew)]
        // Each route in turn spends a fresh code; every other route is then refused that code as a replay. (A quarter of
        // an hour between them: each reset asks for a new link, three an hour at most.)
        for (name, use) in routes {
            fixture.clock.advance(901)
            let code = TOTP.code(secret: active.secret, time: fixture.clock.now)
            try await use(code)
            for (other, reuse) in routes where other != name {
                #expect(await errorCode { try await reuse(code) } == .otpReplayed, "\(name) then \(other)")
            }
        }
        // The replays were counted as wrong answers, but the successes in between kept the holder below the lock.
        #expect(try await fixture.store.secretFailures(holderID: active.holder.id).otp == routes.count - 1)
    }

    @Test("the token fails in the middle of signHash: the SAD gets back exactly what it spent, and signs it later once")
    func refundWhenTheTokenFails() async throws {
        let fixture = try await ServiceFixture()
        let active = try await fixture.activeHolder(name: "Rina")
        let hashes = [digest("a"), digest("b"), digest("c")]
        let auth = try await fixture.service.authorization.authorize(holderID: active.holder.id, credentialID: active.credential.id, numSignatures: 3, hashes: hashes,
                                                                     hashAlgorithm: .sha256, password: active.password, otp: fixture.otp(active))
        func sign(_ domain: Domain, _ hashes: [[UInt8]]) async throws -> [[UInt8]] {
            try await domain.signing.signHash(holderID: active.holder.id, credentialID: active.credential.id, sad: auth.sad, hashes: hashes, mechanism: .ecdsa(.sha256))
        }
        #expect(try await sign(fixture.service, [hashes[0]]).count == 1)
        #expect(try await self.stored(fixture, auth.sad).used == 1)

        // The same service on a token that went away: the SAD is spent before the token call, which then fails.
        let gone = try TestToken(sessions: 1)
        gone.token.close()
        var settings = DomainSettings(publicBaseURL: "https://127.0.0.1:8443")
        settings.defaultMultisign = 100
        let broken = Domain(store: fixture.store, signer: Signer(token: gone.token), ca: fixture.ca, crl: fixture.crl, settings: settings, notifier: fixture.notifier,
                            passwords: PasswordHasher(parameters: Argon2Parameters(memoryKiB: 1024, iterations: 1, parallelism: 1)), clock: fixture.clock.serviceClock)
        #expect(await errorCode { _ = try await sign(broken, [hashes[1], hashes[2]]) } == .tokenUnavailable)
        // Refunded exactly: not a signature lost, not one credited twice.
        #expect(try await self.stored(fixture, auth.sad).used == 1)
        let failed = try await fixture.store.auditRecords().filter { $0.event.action == "signature.sign" && $0.event.outcome == "failed" }
        #expect(failed.count == 1)

        // Back on the working token, the two signatures are still there, and no more.
        let signatures = try await sign(fixture.service, [hashes[1], hashes[2]])
        let key = try #require(P256.Signing.PublicKey(try Certificate(derEncoded: active.credential.certificateDER).publicKey))
        for (text, signature) in zip(["b", "c"], signatures) {
            #expect(key.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: signature), for: SHA256.hash(data: Data(text.utf8))))
        }
        #expect(signatures.count == 2)
        #expect(try await self.stored(fixture, auth.sad).used == 3)
        #expect(await errorCode { _ = try await sign(fixture.service, [hashes[0]]) } == .invalidSAD)
    }
}
