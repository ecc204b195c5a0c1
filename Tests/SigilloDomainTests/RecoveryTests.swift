import Crypto
import Foundation
import PKCS11
import SigilloDomain
import SigilloPKI
import SigilloSQLite
import SigilloTestSupport
import Testing

/// Lost username, password, OTP device, user code; change of mobile number.
@Suite("Lost credentials")
struct RecoveryTests {
    func authorize(_ fixture: ServiceFixture, _ active: ServiceFixture.ActiveHolder, password: String, otp: String) async throws -> SignatureAuthorization {
        try await fixture.service.authorization.authorize(holderID: active.holder.id, credentialID: active.credential.id, numSignatures: 1,
                                            hashes: [Array(SHA256.hash(data: Data("doc".utf8)))], hashAlgorithm: .sha256, password: password, otp: otp)
    }

    @Test("lost username: mailed to the registered address only; unknown addresses get the same silence")
    func username() async throws {
        let fixture = try await ServiceFixture()
        let active = try await fixture.activeHolder(name: "Sara")
        let before = fixture.notifier.mails.count
        try await fixture.service.recovery.remindUsername(email: "nobody@example.it")
        #expect(fixture.notifier.mails.count == before)
        try await fixture.service.recovery.remindUsername(email: " " + active.holder.email.uppercased())
        let mail = try #require(fixture.notifier.mails.last)
        #expect(mail.recipient == active.holder.email && mail.body.contains(active.username))
        // Three reminders in 15 minutes at most; the fourth gets the same silence, and is audited as throttled.
        try await fixture.service.recovery.remindUsername(email: active.holder.email)
        try await fixture.service.recovery.remindUsername(email: active.holder.email)
        try await fixture.service.recovery.remindUsername(email: active.holder.email)
        #expect(fixture.notifier.mails.count == before + 3)
        #expect(try await fixture.store.auditRecords().filter { $0.event.action == "recovery.username" && $0.event.outcome == "throttled" }.count == 1)
        fixture.clock.advance(901)
        try await fixture.service.recovery.remindUsername(email: active.holder.email)
        #expect(fixture.notifier.mails.count == before + 4)
    }

    @Test("lost password: single-use link valid 1 hour + OTP; sessions and SADs end; old password stops working")
    func passwordReset() async throws {
        let fixture = try await ServiceFixture()
        let active = try await fixture.activeHolder(name: "Pia")
        let session = try await fixture.service.authentication.issueAccessToken(username: active.username, password: active.password)
        let sad = try await self.authorize(fixture, active, password: active.password, otp: fixture.otp(active)).sad

        try await fixture.service.recovery.requestPasswordReset(usernameOrEmail: "nobody")
        let mailsBefore = fixture.notifier.mails.count
        try await fixture.service.recovery.requestPasswordReset(usernameOrEmail: active.username)
        #expect(fixture.notifier.mails.count == mailsBefore + 1)
        let code = try #require(fixture.notifier.lastLinkCode)
        #expect(fixture.notifier.mails.last?.body.contains("https://127.0.0.1:8443/recovery/password?code=") == true)
        // The link is stored only as a digest: not in the database file nor in its write-ahead log, where the row sits.
        #expect(try databaseBytes(fixture.databasePath).range(of: Data(code.utf8)) == nil)

        #expect(try await fixture.service.recovery.openPasswordReset(code: code).otpKind == .totp)
        #expect(await errorCode { try await fixture.service.recovery.resetPassword(code: code, otp: fixture.otp(active), newPassword: "short") } == .weakPassword)
        #expect(await errorCode { try await fixture.service.recovery.resetPassword(code: code, otp: "000000", newPassword: "a brand new secret") } == .invalidOTP)
        #expect(try await fixture.store.secretFailures(holderID: active.holder.id).otp == 1)
        #expect(await errorCode { try await fixture.service.recovery.resetPassword(code: "not-a-code", otp: fixture.otp(active), newPassword: "a brand new secret") } == .notFound)

        try await fixture.service.recovery.resetPassword(code: code, otp: fixture.otp(active), newPassword: "a brand new secret")
        #expect(fixture.notifier.mails.last?.subject?.contains("password cambiata") == true)
        // Sessions and SADs of the holder are gone; the old password no longer works, the new one does.
        #expect(await errorCode { _ = try await fixture.service.authentication.holderID(accessToken: session.token) } == .invalidToken)
        #expect(await errorCode {
            _ = try await fixture.service.signing.signHash(holderID: active.holder.id, credentialID: active.credential.id, sad: sad,
                                                   hashes: [Array(SHA256.hash(data: Data("doc".utf8)))], mechanism: .ecdsa(.sha256))
        } == .invalidSAD)
        #expect(await errorCode { _ = try await fixture.service.authentication.login(username: active.username, password: active.password) } == .invalidPassword)
        _ = try await fixture.service.authentication.login(username: active.username, password: "a brand new secret")
        // The link is single use.
        #expect(await errorCode { try await fixture.service.recovery.resetPassword(code: code, otp: fixture.otp(active), newPassword: "another new secret") } == .linkExpired)

        // A link older than one hour no longer works.
        try await fixture.service.recovery.requestPasswordReset(usernameOrEmail: active.holder.email)
        let late = try #require(fixture.notifier.lastLinkCode)
        fixture.clock.advance(3601)
        #expect(await errorCode { _ = try await fixture.service.recovery.openPasswordReset(code: late) } == .linkExpired)
        #expect(await errorCode { try await fixture.service.recovery.resetPassword(code: late, otp: fixture.otp(active), newPassword: "another new secret") } == .linkExpired)

        // Three links in 15 minutes at most: more requests answer the same but send nothing.
        let sent = fixture.notifier.mails.count
        for _ in 0..<5 { try await fixture.service.recovery.requestPasswordReset(usernameOrEmail: active.username) }
        #expect(fixture.notifier.mails.count == sent + 3)
        fixture.clock.advance(901)
        try await fixture.service.recovery.requestPasswordReset(usernameOrEmail: active.username)
        #expect(fixture.notifier.mails.count == sent + 4)
    }

    @Test("lost OTP device: password + user code, the new device proven; the old device's codes are refused at once")
    func deviceRebind() async throws {
        let fixture = try await ServiceFixture()
        let holder = try await fixture.newHolder(name: "Gino")
        let invitation = try await fixture.service.enrollment.invite(holderID: holder.id, actor: "op")
        let challenge = try await fixture.service.enrollment.beginActivation(invitationCode: invitation.code, device: .totp())
        let activated = try await fixture.service.enrollment.activate(invitationCode: invitation.code, username: "gino", password: "correct horse battery",
                                                          otp: TOTP.code(secret: challenge.secret!, time: fixture.clock.now))
        fixture.clock.advance(30)
        let old = ServiceFixture.ActiveHolder(holder: holder, credential: activated.credential, username: "gino", password: "correct horse battery", secret: challenge.secret!)

        #expect(await errorCode { _ = try await fixture.service.recovery.beginDeviceRebind(username: "gino", password: "correct horse battery", userCode: "AAAA-BBBB-CCCC-DDDD") } == .invalidRequest)
        #expect(await errorCode { _ = try await fixture.service.recovery.beginDeviceRebind(username: "gino", password: "wrong password!", userCode: activated.userCode) } == .invalidPassword)
        // Password and user code (both known things) only mail a link to the registered address: possession of the
        // mailbox chooses the device. The caller gets no challenge, and cannot supply a seed.
        let mailedTo = try await fixture.service.recovery.beginDeviceRebind(username: "gino", password: "correct horse battery", userCode: activated.userCode)
        #expect(mailedTo.hasSuffix(String(holder.email[holder.email.firstIndex(of: "@")!...])) && !mailedTo.contains(holder.email))
        let link = try #require(fixture.notifier.lastLinkCode)
        #expect(fixture.notifier.mails.last?.body.contains("/recovery/device/confirm?code=") == true)
        try await fixture.service.recovery.checkDeviceRebindRequest(token: link)
        #expect(await errorCode { _ = try await fixture.service.recovery.confirmDeviceRebind(token: link, device: .hotp(serial: "X", secret: Array(repeating: 1, count: 20))) } == .invalidRequest)
        #expect(await errorCode { _ = try await fixture.service.recovery.confirmDeviceRebind(token: "forged", device: .totp()) } == .notFound)
        let rebind = try await fixture.service.recovery.confirmDeviceRebind(token: link, device: .totp())
        #expect(await errorCode { _ = try await fixture.service.recovery.confirmDeviceRebind(token: link, device: .totp()) } == .linkExpired)
        let newSecret = try #require(rebind.challenge.secret)
        // Until the new device is proven, the old one still works.
        _ = try await self.authorize(fixture, old, password: old.password, otp: fixture.otp(old))
        #expect(await errorCode { try await fixture.service.recovery.completeDeviceRebind(token: rebind.token, otp: "000000") } == .invalidOTP)
        try await fixture.service.recovery.completeDeviceRebind(token: rebind.token, otp: TOTP.code(secret: newSecret, time: fixture.clock.now))
        fixture.clock.advance(30)
        #expect(await errorCode { try await fixture.service.recovery.completeDeviceRebind(token: rebind.token, otp: TOTP.code(secret: newSecret, time: fixture.clock.now)) } == .linkExpired)
        // The old device's code is refused; the new one's accepted.
        #expect(await errorCode { _ = try await self.authorize(fixture, old, password: old.password, otp: TOTP.code(secret: old.secret, time: fixture.clock.now)) } == .invalidOTP)
        let renewed = ServiceFixture.ActiveHolder(holder: holder, credential: activated.credential, username: "gino", password: "correct horse battery", secret: newSecret)
        _ = try await self.authorize(fixture, renewed, password: renewed.password, otp: fixture.otp(renewed))
        #expect(fixture.notifier.mails.last?.subject?.contains("nuovo dispositivo OTP") == true)
        #expect(fixture.notifier.texts.last?.body.contains("new OTP device was bound") == true && fixture.notifier.texts.last?.recipient == holder.mobile)

        // An operator re-binds to a hardware token after an identity check; the holder proves it with its code.
        let seed = Array(repeating: UInt8(0x42), count: 20)
        let byOperator = try await fixture.service.recovery.operatorBeginDeviceRebind(holderID: holder.id, device: .hotp(serial: "HW-0001", secret: seed), actor: "CN=operator")
        try await fixture.service.recovery.operatorCompleteDeviceRebind(token: byOperator.token, otp: HOTP.code(secret: seed, counter: 0), actor: "CN=operator")
        #expect(await errorCode { _ = try await self.authorize(fixture, renewed, password: renewed.password, otp: fixture.otp(renewed)) } == .invalidOTP)
        _ = try await self.authorize(fixture, renewed, password: renewed.password, otp: HOTP.code(secret: seed, counter: 1))
        let audit = try await fixture.store.auditRecords()
        #expect(audit.contains { $0.event.action == "otp.rebind.begin" && $0.event.actor == "CN=operator" })
        #expect(audit.contains { $0.event.action == "otp.rebind.complete" && $0.event.actor == "CN=operator" && $0.event.outcome == "ok" })
        // A binding token left unused expires.
        let stale = try await fixture.service.recovery.operatorBeginDeviceRebind(holderID: holder.id, device: .totp(), actor: "CN=operator")
        fixture.clock.advance(Recovery.deviceRebindValidity + 1)
        #expect(await errorCode { try await fixture.service.recovery.completeDeviceRebind(token: stale.token, otp: TOTP.code(secret: stale.challenge.secret!, time: fixture.clock.now)) } == .linkExpired)
    }

    @Test("change of mobile number: a code to the old number and one to the new, both needed; taken or malformed numbers refused")
    func mobileChange() async throws {
        let fixture = try await ServiceFixture()
        let active = try await fixture.activeHolder(name: "Ada")
        let other = try await fixture.activeHolder(name: "Eva")
        let oldMobile = active.holder.mobile
        let change = { (new: String) in try await fixture.service.recovery.beginMobileChange(username: active.username, password: active.password, newMobile: new) }
        #expect(await errorCode { _ = try await change("3409998877") } == .invalidRequest)
        #expect(await errorCode { _ = try await change(oldMobile) } == .invalidRequest)
        #expect(await errorCode { _ = try await change(other.holder.mobile) } == .conflict)
        #expect(await errorCode { _ = try await fixture.service.recovery.beginMobileChange(username: active.username, password: "wrong password!", newMobile: "+393409998877") } == .invalidPassword)
        let complete = { (old: String, new: String) in
            try await fixture.service.recovery.completeMobileChange(username: active.username, password: active.password, oldNumberCode: old, newNumberCode: new)
        }
        /// Starts the change and returns the codes sent to the old and to the new number.
        let begin = { () async throws -> (old: String, new: String) in
            let before = fixture.notifier.texts.count
            let started = try await change("+39 340 999 8877")
            #expect(started.oldNumberEnd == String(oldMobile.suffix(3)) && started.newNumberEnd == "877")
            let texts = Array(fixture.notifier.texts.dropFirst(before))
            #expect(texts.map(\.recipient) == [oldMobile, "+393409998877"])
            return (CapturingNotifier.code(texts[0]) ?? "", CapturingNotifier.code(texts[1]) ?? "")
        }

        let first = try await begin()
        #expect(await errorCode { _ = try await complete("000000", first.new) } == .invalidOTP)
        #expect(await errorCode { _ = try await complete(first.old, "000000") } == .invalidOTP)
        #expect(try await fixture.store.holder(id: active.holder.id)?.mobile == oldMobile)
        // Five SMS in 15 minutes at most, and a change sends two or none: after 4, a third start sends nothing.
        _ = try await begin()
        let texts = fixture.notifier.texts.count
        #expect(await errorCode { _ = try await change("+393409998877") } == .tooManyRequests)
        #expect(fixture.notifier.texts.count == texts)
        // Both codes, fresh, once the window has passed.
        fixture.clock.advance(901)
        let second = try await begin()
        let changed = try await complete(second.old, second.new)
        #expect(changed.mobile == "+393409998877")
        #expect(try await fixture.store.holder(id: active.holder.id)?.mobile == "+393409998877")
        #expect(await errorCode { _ = try await complete(second.old, second.new) } == .invalidOTP)
        #expect(try await fixture.store.auditRecords().contains { $0.event.action == "holder.mobile.change" && $0.event.outcome == "ok" })
        #expect(fixture.notifier.mails.last?.recipient == active.holder.email)
    }

    @Test("lost user code: no recovery; with password + OTP the holder revokes everything, and a new order follows")
    func lostUserCode() async throws {
        let fixture = try await ServiceFixture()
        let active = try await fixture.activeHolder(name: "Ivo")
        #expect(await errorCode { _ = try await fixture.service.recovery.authenticateForRevocation(username: active.username, password: active.password, otp: "000000") } == .invalidOTP)
        let holder = try await fixture.service.recovery.authenticateForRevocation(username: active.username, password: active.password, otp: fixture.otp(active))
        let revoked = try await fixture.service.lifecycle.revokeHolder(holderID: holder.id, reason: .cessationOfOperation, actor: "holder:\(holder.id)")
        #expect(revoked.state == .revoked)
        #expect(try await fixture.store.credential(id: active.credential.id)?.status == .revoked)
        #expect(try await !HolderKeyProbe.exists(active.credential.id, store: fixture.store, token: fixture.token.token))
        #expect(fixture.notifier.mails.last?.subject?.contains("revocato") == true)
        #expect(await errorCode { _ = try await fixture.service.authentication.login(username: active.username, password: active.password) } == .credentialDisabled)
    }
}
