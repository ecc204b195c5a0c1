import Crypto
import Foundation
import PKCS11
import SigilloDomain
import SigilloPKI
import SigilloSQLite
import SigilloTestSupport
import Testing
import X509

/// Enrolment states, expiry reminders and renewal, with a clock that runs years in milliseconds.
@Suite("Holder lifecycle: enrolment, expiry reminders, renewal")
struct LifecycleTests {
    @Test("enrolment walks order → payment → processing → documents → recognized → invited; illegal moves refused and audited")
    func enrolment() async throws {
        let fixture = try await ServiceFixture()
        let service = fixture.service
        let holder = try await service.enrollment.createHolder(
            givenName: "Anna", surname: "Neri", fiscalCode: TestData.fiscalCode(), email: "anna@example.it", mobile: "+393331112223", actor: "op")
        #expect(holder.state == .created)
        #expect(await errorCode { _ = try await service.enrollment.invite(holderID: holder.id, actor: "op") } == .illegalTransition)
        #expect(await errorCode { _ = try await service.enrollment.advanceEnrolment(holderID: holder.id, to: .recognized, actor: "op") } == .illegalTransition)
        #expect(await errorCode { _ = try await service.enrollment.advanceEnrolment(holderID: holder.id, to: .active, actor: "op") } == .illegalTransition)
        #expect(await errorCode { _ = try await service.enrollment.advanceEnrolment(holderID: "h-nobody", to: .paymentRegistered, actor: "op") } == .notFound)
        for step in [HolderState.paymentRegistered, .awaitingProcessing, .awaitingDocuments, .recognized] {
            #expect(try await service.enrollment.advanceEnrolment(holderID: holder.id, to: step, actor: "op").state == step)
        }
        #expect(await errorCode { _ = try await service.enrollment.advanceEnrolment(holderID: holder.id, to: .awaitingDocuments, actor: "op") } == .illegalTransition)
        let invitation = try await service.enrollment.invite(holderID: holder.id, actor: "op")
        #expect(try await fixture.store.holder(id: holder.id)?.state == .invited)
        // The invitation went out by mail with its link.
        #expect(fixture.notifier.mails.last?.recipient == "anna@example.it")
        #expect(fixture.notifier.lastLinkCode == invitation.code)
        let audit = try await fixture.store.auditRecords().filter { $0.event.target == holder.id && $0.event.action == "holder.transition" }
        #expect(audit.map(\.event.outcome) == ["refused", "refused", "ok", "ok", "ok", "ok", "refused"])
        #expect(audit[2].event.details == "from=created to=payment_registered")

        // Cancelling the order kills the invitation.
        let revoked = try await service.lifecycle.revokeHolder(holderID: holder.id, reason: .cessationOfOperation, actor: "op")
        #expect(revoked.state == .revoked)
        #expect(await errorCode { _ = try await service.enrollment.beginActivation(invitationCode: invitation.code, device: .totp()) } == .invitationUsed)
        #expect(await errorCode { _ = try await service.lifecycle.revokeHolder(holderID: holder.id, reason: .unspecified, actor: "op") } == .illegalTransition)
    }

    @Test("an invitation older than 12 months says so and points to a new order")
    func expiredInvitation() async throws {
        let fixture = try await ServiceFixture()
        let holder = try await fixture.newHolder(name: "Ugo")
        let invitation = try await fixture.service.enrollment.invite(holderID: holder.id, actor: "op")
        fixture.clock.advance(364 * 86_400)
        #expect(try await fixture.service.enrollment.invitationHolder(code: invitation.code).holder.id == holder.id)
        fixture.clock.advance(2 * 86_400)
        do {
            _ = try await fixture.service.enrollment.invitationHolder(code: invitation.code)
            Issue.record("an expired invitation opened")
        } catch let error as SigilloError {
            #expect(error.code == .invitationExpired)
            #expect(error.message.contains("new order"))
        }
        // The operator may invite again: a fresh 12 months.
        let again = try await fixture.service.enrollment.invite(holderID: holder.id, actor: "op")
        _ = try await fixture.service.enrollment.beginActivation(invitationCode: again.code, device: .totp())
    }

    @Test("reminders on day -90, -80, … -10, expiry notice on day 0; active → active_expiring → expired; idempotent")
    func reminderSchedule() async throws {
        let fixture = try await ServiceFixture()
        let active = try await fixture.activeHolder(name: "Rita")
        let notAfter = active.credential.notAfter
        // Three years, as the certificates last.
        #expect(Calendar(identifier: .gregorian).dateComponents([.year], from: active.credential.notBefore, to: notAfter).year == 3)
        let mailsBefore = fixture.notifier.mails.count
        fixture.clock.advance(notAfter.timeIntervalSince(fixture.clock.now) - 100 * 86_400)
        var reminderDays: [Int] = []
        var states: [HolderState] = []
        for day in stride(from: 100, through: -2, by: -1) {
            // Noon of each day before the end, twice: the second run must send nothing.
            let target = notAfter.addingTimeInterval(-Double(day) * 86_400)
            fixture.clock.advance(target.timeIntervalSince(fixture.clock.now))
            let first = try await fixture.service.lifecycle.runLifecycleJobs()
            let second = try await fixture.service.lifecycle.runLifecycleJobs()
            #expect(second.remindersSent == 0 && second.expiredNotices == 0)
            if first.remindersSent + first.expiredNotices > 0 { reminderDays.append(day) }
            states.append(try await fixture.store.holder(id: active.holder.id)!.state)
        }
        #expect(reminderDays == [90, 80, 70, 60, 50, 40, 30, 20, 10, 0])
        let mails = fixture.notifier.mails.dropFirst(mailsBefore)
        #expect(mails.count == 10)
        #expect(mails.first?.subject?.contains("90") == true)
        #expect(mails.last?.subject?.contains("scaduto") == true)
        #expect(mails.allSatisfy { $0.recipient == active.holder.email })
        #expect(mails.dropLast().allSatisfy { $0.body.contains("https://127.0.0.1:8443/renew") })
        // States: active until day -90, expiring until the end, expired at day 0.
        #expect(states[0..<10].allSatisfy { $0 == .active })
        #expect(states[10] == .expiring)
        #expect(states[states.count - 3] == .expired)
        #expect(states.last == .expired)
        // An expired holder cannot sign.
        #expect(await errorCode {
            _ = try await fixture.service.authorization.authorize(holderID: active.holder.id, credentialID: active.credential.id, numSignatures: 1,
                                                    hashes: [Array(SHA256.hash(data: Data("x".utf8)))], hashAlgorithm: .sha256, password: active.password, otp: fixture.otp(active))
        } == .certificateInvalid)
        let transitions = try await fixture.store.auditRecords().filter { $0.event.action == "holder.transition" && $0.event.target == active.holder.id }
        #expect(transitions.map(\.event.details) == ["from=active to=active_expiring", "from=active_expiring to=expired"])
    }

    @Test("a scheduler that was down sends only the latest reminder due, not a burst")
    func noBurst() async throws {
        let fixture = try await ServiceFixture()
        let active = try await fixture.activeHolder(name: "Eva")
        fixture.clock.advance(active.credential.notAfter.timeIntervalSince(fixture.clock.now) - 35 * 86_400)
        let report = try await fixture.service.lifecycle.runLifecycleJobs()
        #expect(report.remindersSent == 1 && report.stateChanges == 1)
        #expect(fixture.notifier.mails.last?.subject?.contains("35") == true)
        #expect(try await fixture.store.credential(id: active.credential.id)?.lastReminderDays == 40)
    }

    @Test("renewal: new key and certificate, same password and device, old one revoked as superseded; only when expiring", arguments: HolderKeyStorage.allCases)
    func renewal(holderKeys: HolderKeyStorage) async throws {
        let fixture = try await ServiceFixture(holderKeys: holderKeys)
        let active = try await fixture.activeHolder(name: "Leo")
        #expect(await errorCode { _ = try await fixture.service.lifecycle.renew(username: active.username, password: active.password, otp: fixture.otp(active)) } == .illegalTransition)
        fixture.clock.advance(active.credential.notAfter.timeIntervalSince(fixture.clock.now) - 50 * 86_400)
        _ = try await fixture.service.lifecycle.runLifecycleJobs()
        #expect(try await fixture.store.holder(id: active.holder.id)?.state == .expiring)
        #expect(await errorCode { _ = try await fixture.service.lifecycle.renew(username: active.username, password: "wrong password!", otp: fixture.otp(active)) } == .invalidPassword)
        #expect(await errorCode { _ = try await fixture.service.lifecycle.renew(username: active.username, password: active.password, otp: "000000") } == .invalidOTP)

        let renewed = try await fixture.service.lifecycle.renew(username: active.username, password: active.password, otp: fixture.otp(active))
        #expect(renewed.id != active.credential.id && renewed.keyAlgorithm == active.credential.keyAlgorithm)
        #expect(renewed.notBefore > active.credential.notBefore)
        #expect(Calendar(identifier: .gregorian).dateComponents([.year], from: renewed.notBefore, to: renewed.notAfter).year == 3)
        let old = try await fixture.store.credential(id: active.credential.id)
        #expect(old?.status == .revoked && old?.revocationReason == .superseded)
        #expect(try await !HolderKeyProbe.exists(active.credential.id, store: fixture.store, token: fixture.token.token))
        #expect(try await !fixture.token.token.containsKey(id: active.credential.tokenKeyID))
        #expect(try await HolderKeyProbe.exists(renewed.id, store: fixture.store, token: fixture.token.token))
        #expect((renewed.wrappedKey != nil) == (holderKeys == .wrapped))
        #expect(old?.wrappedKey == nil, "the revoked credential's wrapped key must be deleted")
        #expect(try await fixture.store.holder(id: active.holder.id)?.state == .active)
        #expect(fixture.notifier.mails.last?.subject?.contains("rinnovato") == true)
        // Same password and OTP device sign with the new credential; the old one is gone.
        let digest = Array(SHA256.hash(data: Data("renewed".utf8)))
        let message = SHA256.hash(data: Data("renewed".utf8))
        let authorization = try await fixture.service.authorization.authorize(holderID: active.holder.id, credentialID: renewed.id, numSignatures: 1, hashes: [digest],
                                                                hashAlgorithm: .sha256, password: active.password, otp: fixture.otp(active))
        let signatures = try await fixture.service.signing.signHash(holderID: active.holder.id, credentialID: renewed.id, sad: authorization.sad, hashes: [digest], mechanism: .ecdsa(.sha256))
        let publicKey = try #require(P256.Signing.PublicKey(try Certificate(derEncoded: renewed.certificateDER).publicKey))
        #expect(publicKey.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: signatures[0]), for: message))
        // No more reminders for the renewed holder until the new certificate nears its end.
        fixture.clock.advance(60 * 86_400)
        let report = try await fixture.service.lifecycle.runLifecycleJobs()
        #expect(report.remindersSent == 0 && report.expiredNotices == 0)
        #expect(try await fixture.store.holder(id: active.holder.id)?.state == .active)
    }

    @Test("revocation of a wrapped key: the blob leaves the row in the same transaction, the unwrapped copy is destroyed at once, no signature after")
    func revocationEvictsWrappedKey() async throws {
        let fixture = try await ServiceFixture(holderKeys: .wrapped, sessions: 1)
        let active = try await fixture.activeHolder(name: "Rex")
        _ = try await fixture.sign("before", holder: active, credentialID: active.credential.id)
        let id = Array(active.credential.id.utf8)
        func unwrappedCopies() async throws -> Int {
            try await fixture.token.token.withSession { session throws(PKCS11Error) in
                try session.findObjects([.objectClass(.privateKey), .bool(.token, false), .bytes(.id, id)]).count
            }
        }
        #expect(try await unwrappedCopies() == 1, "the signature left its unwrapped key cached")
        _ = try await fixture.service.lifecycle.revoke(credentialID: active.credential.id, reason: .keyCompromise, actor: "operator:test")
        #expect(try await fixture.store.credential(id: active.credential.id)?.wrappedKey == nil)
        #expect(try await unwrappedCopies() == 0, "the unwrapped key must be destroyed before the worker's next job")
        #expect(await errorCode { _ = try await fixture.sign("after", holder: active, credentialID: active.credential.id) } == .credentialDisabled)
        let audit = try await fixture.store.auditRecords().last { $0.event.action == "credential.revoke" }?.event
        #expect(audit?.details.contains("wrapped_key_deleted=true") == true, "\(String(describing: audit))")
    }

    @Test("two nodes (two token pools on one database): a key node B has unwrapped is never used after node A revokes it; B destroys its copy at the refusal")
    func revocationOnAnotherNode() async throws {
        let fixture = try await ServiceFixture(holderKeys: .wrapped, sessions: 1)
        let tokenB = try Token.open(fixture.token.configuration)
        defer { tokenB.close() }
        let nodeB = try await fixture.domain(holderKeys: .wrapped, token: tokenB)
        let active = try await fixture.activeHolder(name: "Nora")
        let id = Array(active.credential.id.utf8)
        func unwrappedCopies() async throws -> Int {
            try await tokenB.withSession { session throws(PKCS11Error) in
                try session.findObjects([.objectClass(.privateKey), .bool(.token, false), .bytes(.id, id)]).count
            }
        }
        _ = try await fixture.sign("on B", holder: active, credentialID: active.credential.id, with: nodeB)
        _ = try await fixture.sign("on B again", holder: active, credentialID: active.credential.id, with: nodeB)
        #expect(tokenB.unwrapStatistics.unwraps == 1 && tokenB.unwrapStatistics.hits == 1)
        #expect(fixture.token.token.unwrapStatistics.unwraps == 0)
        #expect(try await unwrappedCopies() == 1)

        // Node A revokes: it cannot reach B's sessions, so B's copy is still there ...
        _ = try await fixture.service.lifecycle.revoke(credentialID: active.credential.id, reason: .keyCompromise, actor: "operator:test")
        #expect(try await unwrappedCopies() == 1)
        // ... but B reads the row for the request, finds the credential revoked and its key gone: refused before the token.
        #expect(await errorCode { _ = try await fixture.sign("on B after", holder: active, credentialID: active.credential.id, with: nodeB) } == .credentialDisabled)
        #expect(tokenB.unwrapStatistics.hits == 1, "the cached key must not sign again")
        // The refusal told B's workers: its copy is destroyed before their next job.
        try await tokenB.ping()
        #expect(try await unwrappedCopies() == 0)
    }

    @Test("keys migrate: token-object credentials re-keyed to wrapped keys; their token objects destroyed; suspended ones skipped")
    func migrateTokenKeysToWrapped() async throws {
        let fixture = try await ServiceFixture(holderKeys: .token)
        let moving = try await fixture.activeHolder(name: "Mia")
        let suspended = try await fixture.activeHolder(name: "Sam")
        _ = try await fixture.service.lifecycle.suspend(credentialID: suspended.credential.id, actor: "operator:test")
        #expect(try await fixture.token.token.containsKey(id: moving.credential.id))
        // Still token objects: the migration has nowhere to go.
        #expect(await errorCode { _ = try await fixture.service.lifecycle.migrateKeys(actor: "operator:test") } == .conflict)

        // The configuration now says wrapped (the KEK made in the token).
        let wrapped = try await fixture.domain(holderKeys: .wrapped)
        let report = try await wrapped.lifecycle.migrateKeys(actor: "operator:test")
        #expect(report.migrated.map(\.old) == [moving.credential.id])
        #expect(report.skipped.map(\.id) == [suspended.credential.id])
        let newID = try #require(report.migrated.first?.new)
        let replacement = try #require(try await fixture.store.credential(id: newID))
        #expect(replacement.status == .active && replacement.wrappedKey != nil && replacement.holderID == moving.holder.id)
        #expect(try await !fixture.token.token.containsKey(id: newID), "the new key is wrapped, not a token object")
        let old = try await fixture.store.credential(id: moving.credential.id)
        #expect(old?.status == .revoked && old?.revocationReason == .superseded)
        #expect(try await !fixture.token.token.containsKey(id: moving.credential.id), "the old token objects must be destroyed")
        #expect(try await fixture.token.token.containsKey(id: suspended.credential.id), "a skipped credential keeps its key")
        #expect(fixture.notifier.mails.last?.subject?.contains("rinnovato") == true)

        // The holder signs with the new wrapped key (same password and device); the signature verifies with the new certificate.
        let signature = try await fixture.sign("migrated", holder: moving, credentialID: newID, with: wrapped)
        let publicKey = try #require(P256.Signing.PublicKey(try Certificate(derEncoded: replacement.certificateDER).publicKey))
        #expect(publicKey.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: signature), for: SHA256.hash(data: Data("migrated".utf8))))
        #expect(try Certificate.PublicKey(derEncoded: try #require(replacement.publicKey)) == Certificate(derEncoded: replacement.certificateDER).publicKey)

        // Once reinstated, the skipped one moves too; a second run has nothing left to do.
        _ = try await wrapped.lifecycle.reinstate(credentialID: suspended.credential.id, actor: "operator:test")
        #expect(try await wrapped.lifecycle.migrateKeys(actor: "operator:test").migrated.map(\.old) == [suspended.credential.id])
        #expect(try await wrapped.lifecycle.migrateKeys(actor: "operator:test") == CredentialLifecycle.KeyMigrationReport())
        #expect(try await !fixture.token.token.containsKey(id: suspended.credential.id))
    }

    @Test("hardware tokens: imported from the seed file, bound by serial and a code; one token, one holder")
    func hardwareInventory() async throws {
        let fixture = try await ServiceFixture()
        let admin = fixture.service.administration
        let seed = (0..<20).map { UInt8($0) }
        let hex = seed.map { String(format: "%02x", $0) }.joined()
        #expect(await errorCode { _ = try await admin.importHardwareTokens(csv: "HW-1,\(hex)\nHW-2,zz", actor: "op") } == .invalidRequest)
        #expect(try await fixture.store.hardwareToken(serial: "HW-1") == nil)
        let imported = try await admin.importHardwareTokens(csv: "# serial,seed\nHW-1,\(hex)\nHW-2,\(hex),8,sha256\n", actor: "op")
        #expect(imported.added == 2 && imported.known == 0)
        #expect(try await admin.importHardwareTokens(csv: "HW-1,\(hex)", actor: "op").known == 1)
        #expect(try await fixture.store.hardwareToken(serial: "HW-2")?.digits == 8)

        let holder = try await fixture.newHolder(name: "Tea")
        let invitation = try await fixture.service.enrollment.invite(holderID: holder.id, actor: "op")
        #expect(await errorCode { _ = try await fixture.service.enrollment.beginActivation(invitationCode: invitation.code, device: .hardware(serial: "HW-404")) } == .invalidRequest)
        let challenge = try await fixture.service.enrollment.beginActivation(invitationCode: invitation.code, device: .hardware(serial: "HW-1"))
        #expect(challenge.kind == .hotp && challenge.secret == nil)
        _ = try await fixture.service.enrollment.activate(invitationCode: invitation.code, username: "tea", password: "correct horse battery", otp: HOTP.code(secret: seed, counter: 0))
        #expect(try await fixture.store.activeOTPDevice(holderID: holder.id)?.serial == "HW-1")

        // The same token cannot be bound by a second holder.
        let other = try await fixture.newHolder(name: "Ada")
        let second = try await fixture.service.enrollment.invite(holderID: other.id, actor: "op")
        _ = try await fixture.service.enrollment.beginActivation(invitationCode: second.code, device: .hardware(serial: "HW-1"))
        #expect(await errorCode {
            _ = try await fixture.service.enrollment.activate(invitationCode: second.code, username: "ada", password: "correct horse battery", otp: HOTP.code(secret: seed, counter: 1))
        } == .conflict)
    }
}
