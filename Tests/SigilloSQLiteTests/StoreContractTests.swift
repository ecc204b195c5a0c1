import Foundation
import PKCS11
import SigilloDomain
import SigilloSQLite
import SigilloTestSupport
import Testing

/// The behaviour every `Store` promises (the doc comments of the protocols in `SigilloDomain/Store`), checked against
/// every implementation in `StoreKind`. Where a protocol says "atomic", "once" or "compare-and-set", 20 callers race
/// and exactly the promised number may win. Time never passes by itself: tests move `now` forward.
@Suite("Store contract")
struct StoreContractTests {
    // MARK: SADStore

    @Test("SADStore: 20 concurrent consumers spend at most numSignatures", arguments: StoreKind.allCases)
    func sadConsumedAtMostNumSignatures(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let (_, _, credential) = try await fixture.activeHolder()
        let sad = try await fixture.newSAD(credential, numSignatures: 5)
        #expect(try await store.sad(idHash: sad.idHash) == sad)
        let now = fixture.now
        let wins = try await concurrently(20) { _ in try await store.consumeSAD(idHash: sad.idHash, count: 1, now: now) }
        #expect(wins.filter { $0 }.count == 5)
        #expect(try await store.sad(idHash: sad.idHash)?.used == 5)
        #expect(try await store.consumeSAD(idHash: sad.idHash, count: 1, now: now) == false)

        // Spending several at once: all or nothing.
        let pair = try await fixture.newSAD(credential, numSignatures: 3)
        #expect(try await store.consumeSAD(idHash: pair.idHash, count: 2, now: now))
        #expect(try await store.consumeSAD(idHash: pair.idHash, count: 2, now: now) == false)
        #expect(try await store.sad(idHash: pair.idHash)?.used == 2)
        #expect(try await store.consumeSAD(idHash: randomBytes(32), count: 1, now: now) == false)
    }

    @Test("SADStore: an expired SAD is neither spent nor extended", arguments: StoreKind.allCases)
    func expiredSADRefused(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let (_, _, credential) = try await fixture.activeHolder()
        let sad = try await fixture.newSAD(credential, numSignatures: 3, lifetime: 60)
        #expect(try await store.consumeSAD(idHash: sad.idHash, count: 1, now: sad.expiresAt) == false)
        #expect(try await store.consumeSAD(idHash: sad.idHash, count: 1, now: sad.expiresAt.addingTimeInterval(3600)) == false)
        #expect(try await store.sad(idHash: sad.idHash)?.used == 0)
        #expect(try await store.consumeSAD(idHash: sad.idHash, count: 1, now: sad.expiresAt.addingTimeInterval(-1)))

        // Extending an unexpired SAD moves its expiry; an expired one stays expired.
        let later = sad.expiresAt.addingTimeInterval(600)
        #expect(try await store.extendSAD(idHash: sad.idHash, expiresAt: later, now: fixture.now))
        #expect(try await store.sad(idHash: sad.idHash)?.expiresAt == later)
        #expect(try await store.consumeSAD(idHash: sad.idHash, count: 1, now: sad.expiresAt.addingTimeInterval(1)))
        #expect(try await store.extendSAD(idHash: sad.idHash, expiresAt: later.addingTimeInterval(600), now: later) == false)
        #expect(try await store.sad(idHash: sad.idHash)?.expiresAt == later)
    }

    @Test("SADStore: refundSAD gives signatures back; deleteSADs removes only that credential's", arguments: StoreKind.allCases)
    func refundAndDeleteSADs(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let (_, _, credential) = try await fixture.activeHolder()
        let sad = try await fixture.newSAD(credential, numSignatures: 3)
        #expect(try await store.consumeSAD(idHash: sad.idHash, count: 3, now: now))
        #expect(try await store.consumeSAD(idHash: sad.idHash, count: 1, now: now) == false)
        try await store.refundSAD(idHash: sad.idHash, count: 2)
        #expect(try await store.sad(idHash: sad.idHash)?.used == 1)
        #expect(try await store.consumeSAD(idHash: sad.idHash, count: 2, now: now))
        #expect(try await store.consumeSAD(idHash: sad.idHash, count: 1, now: now) == false)

        let second = try await fixture.newSAD(credential)
        let (_, _, other) = try await fixture.activeHolder()
        let kept = try await fixture.newSAD(other)
        try await store.deleteSADs(credentialID: credential.id)
        #expect(try await store.sad(idHash: sad.idHash) == nil)
        #expect(try await store.sad(idHash: second.idHash) == nil)
        #expect(try await store.sad(idHash: kept.idHash) == kept)
    }

    // MARK: OTPStore

    @Test("OTPStore: a TOTP step is accepted once, never an older one; 20 racing on one step, one wins", arguments: StoreKind.allCases)
    func totpReplayRefused(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let (holder, device, _) = try await fixture.activeHolder()
        let stored = try #require(try await store.activeOTPDevice(holderID: holder.id))
        #expect(stored.id == device.id && stored.secret == device.secret && stored.kind == .totp)
        #expect(try await store.advanceTOTP(deviceID: device.id, to: 100))
        #expect(try await store.advanceTOTP(deviceID: device.id, to: 100) == false)
        #expect(try await store.advanceTOTP(deviceID: device.id, to: 99) == false)
        #expect(try await store.advanceTOTP(deviceID: device.id, to: 101))
        #expect(try await store.activeOTPDevice(holderID: holder.id)?.lastStep == 101)

        let wins = try await concurrently(20) { _ in try await store.advanceTOTP(deviceID: device.id, to: 500) }
        #expect(wins.filter { $0 }.count == 1)
        #expect(try await store.activeOTPDevice(holderID: holder.id)?.lastStep == 500)
    }

    @Test("OTPStore: advanceHOTP is compare-and-set; 20 racing from one counter, one wins", arguments: StoreKind.allCases)
    func hotpCompareAndSet(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let (holder, device, _) = try await fixture.activeHolder(device: .hotp)
        #expect(try await store.activeOTPDevice(holderID: holder.id)?.counter == 0)
        let wins = try await concurrently(20) { index in try await store.advanceHOTP(deviceID: device.id, from: 0, to: UInt64(index + 1)) }
        #expect(wins.filter { $0 }.count == 1)
        let counter = try #require(try await store.activeOTPDevice(holderID: holder.id)?.counter)
        #expect((1...20).contains(counter))
        #expect(try await store.advanceHOTP(deviceID: device.id, from: 0, to: 50) == false)
        #expect(try await store.advanceHOTP(deviceID: device.id, from: counter, to: counter + 3))
        #expect(try await store.activeOTPDevice(holderID: holder.id)?.counter == counter + 3)
    }

    @Test("OTPStore: an SMS code is spent once, only for its purpose, not after it expires", arguments: StoreKind.allCases)
    func smsCodeConsumedOnce(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let holder = try await fixture.newHolder()
        let code = randomBytes(32)
        try await store.storeSMSCode(holderID: holder.id, purpose: .signature, codeHash: code, expiresAt: now.addingTimeInterval(300))
        // Bound to its purpose: the same code for a mobile change finds no live code.
        #expect(try await store.checkSMSCode(holderID: holder.id, purpose: .mobileChange, codeHash: code, now: now, tries: 3) == SMSCodeCheck.none)
        #expect(try await store.checkSMSCode(holderID: holder.id, purpose: .signature, codeHash: randomBytes(32), now: now, tries: 3) == .rejected)
        let results = try await concurrently(20) { _ in try await store.checkSMSCode(holderID: holder.id, purpose: .signature, codeHash: code, now: now, tries: 3) }
        #expect(results.filter { $0 == .accepted }.count == 1)
        #expect(try await store.checkSMSCode(holderID: holder.id, purpose: .signature, codeHash: code, now: now, tries: 3) == SMSCodeCheck.none)

        let late = randomBytes(32)
        try await store.storeSMSCode(holderID: holder.id, purpose: .signature, codeHash: late, expiresAt: now.addingTimeInterval(300))
        #expect(try await store.checkSMSCode(holderID: holder.id, purpose: .signature, codeHash: late, now: now.addingTimeInterval(300), tries: 3) == SMSCodeCheck.none)
        #expect(try await store.checkSMSCode(holderID: holder.id, purpose: .signature, codeHash: late, now: now.addingTimeInterval(299), tries: 3) == .accepted)
    }

    @Test("OTPStore: an SMS code dies after 3 wrong tries, even 30 racing ones; a new code for one purpose leaves the others", arguments: StoreKind.allCases)
    func smsCodeDiesAfterThreeTries(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let holder = try await fixture.newHolder()
        let (code, other) = (randomBytes(32), randomBytes(32))
        try await store.storeSMSCode(holderID: holder.id, purpose: .signature, codeHash: code, expiresAt: now.addingTimeInterval(300))
        try await store.storeSMSCode(holderID: holder.id, purpose: .revocation, codeHash: other, expiresAt: now.addingTimeInterval(300))
        let results = try await concurrently(30) { _ in try await store.checkSMSCode(holderID: holder.id, purpose: .signature, codeHash: randomBytes(32), now: now, tries: 3) }
        #expect(results.filter { $0 == .rejected }.count == 3)
        #expect(try await store.checkSMSCode(holderID: holder.id, purpose: .signature, codeHash: code, now: now, tries: 3) == SMSCodeCheck.none)
        #expect(try await store.checkSMSCode(holderID: holder.id, purpose: .revocation, codeHash: other, now: now, tries: 3) == .accepted)
    }

    @Test("AttemptStore: 30 racing reservations admit 5 (busy while in flight, locked once settled); a right answer clears; leases expire", arguments: StoreKind.allCases)
    func attemptsReserved(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let holder = try await fixture.newHolder()
        let reserve: @Sendable (SecretKind, Date) async throws -> AttemptReservation = { secret, at in try await store.reserveAttempt(holderID: holder.id, secret: secret, limit: 5, now: at, lease: 60) }
        #expect(try await store.secretFailures(holderID: holder.id) == SecretFailures())
        let first = try await concurrently(30) { _ in try await reserve(.password, now) }
        #expect(first.filter { $0 == .reserved }.count == 5 && first.filter { $0 == .busy }.count == 25)
        // Four wrong and one right settle: the right one clears the count, and the next five get in again.
        for _ in 0..<4 { _ = try await store.resolveAttempt(holderID: holder.id, secret: .password, right: false) }
        #expect(try await store.secretFailures(holderID: holder.id).password == 4)
        #expect(try await store.resolveAttempt(holderID: holder.id, secret: .password, right: true) == 0)
        let second = try await concurrently(30) { _ in try await reserve(.password, now) }
        #expect(second.filter { $0 == .reserved }.count == 5)
        for _ in 0..<5 { _ = try await store.resolveAttempt(holderID: holder.id, secret: .password, right: false) }
        let third = try await concurrently(30) { _ in try await reserve(.password, now) }
        #expect(third.allSatisfy { $0 == .locked })
        #expect(try await store.secretFailures(holderID: holder.id).pinLocked)
        // Secrets are separate; an in-flight count whose lease ran out (a node died mid-check) frees its place.
        for _ in 0..<5 { #expect(try await reserve(.otp, now) == .reserved) }
        #expect(try await reserve(.otp, now) == .busy)
        #expect(try await reserve(.otp, now.addingTimeInterval(61)) == .reserved)
        try await store.clearAttempts(holderID: holder.id, secrets: [.password])
        #expect(try await reserve(.password, now) == .reserved)
        #expect(try await store.secretFailures(holderID: fixture.newHolder().id) == SecretFailures())
    }

    @Test("OTPStore: a mobile number change completes once, not after expiry, not onto a taken number", arguments: StoreKind.allCases)
    func mobileChangeCompletesOnce(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let holder = try await fixture.newHolder()
        let mobile = randomMobile()
        let code = randomBytes(32)
        try await store.storeMobileChange(holderID: holder.id, mobile: mobile, codeHash: code, expiresAt: now.addingTimeInterval(600))
        #expect(try await store.completeMobileChange(holderID: holder.id, codeHash: randomBytes(32), now: now, tries: 3) == nil)
        let results = try await concurrently(20) { _ in try await store.completeMobileChange(holderID: holder.id, codeHash: code, now: now, tries: 3) }
        #expect(results.compactMap { $0 } == [mobile])
        #expect(try await store.holder(id: holder.id)?.mobile == mobile)
        #expect(try await store.holder(mobile: mobile)?.id == holder.id)
        #expect(try await store.completeMobileChange(holderID: holder.id, codeHash: code, now: now, tries: 3) == nil)

        // Three wrong codes kill the change, even with the right code after them.
        let dying = randomBytes(32)
        try await store.storeMobileChange(holderID: holder.id, mobile: randomMobile(), codeHash: dying, expiresAt: now.addingTimeInterval(600))
        for _ in 0..<3 { #expect(try await store.completeMobileChange(holderID: holder.id, codeHash: randomBytes(32), now: now, tries: 3) == nil) }
        #expect(try await store.completeMobileChange(holderID: holder.id, codeHash: dying, now: now, tries: 3) == nil)
        #expect(try await store.holder(id: holder.id)?.mobile == mobile)

        // Expired.
        let expiring = randomBytes(32)
        try await store.storeMobileChange(holderID: holder.id, mobile: randomMobile(), codeHash: expiring, expiresAt: now.addingTimeInterval(60))
        #expect(try await store.completeMobileChange(holderID: holder.id, codeHash: expiring, now: now.addingTimeInterval(60), tries: 3) == nil)
        #expect(try await store.holder(id: holder.id)?.mobile == mobile)

        // Another holder registered the number meanwhile.
        let wanted = randomMobile()
        let taken = randomBytes(32)
        try await store.storeMobileChange(holderID: holder.id, mobile: wanted, codeHash: taken, expiresAt: now.addingTimeInterval(600))
        var other = fixture.makeHolder()
        other.mobile = wanted
        try await store.createHolder(other)
        let error = try await sigilloError { _ = try await store.completeMobileChange(holderID: holder.id, codeHash: taken, now: now, tries: 3) }
        #expect(error?.code == .conflict)
        #expect(try await store.holder(id: holder.id)?.mobile == mobile)
    }

    @Test("OTPStore: a device rebind completes once: new device active, old off, SADs gone", arguments: StoreKind.allCases)
    func deviceRebindCompletesOnce(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let (holder, oldDevice, credential) = try await fixture.activeHolder()
        let sad = try await fixture.newSAD(credential)
        try await store.recordWrongAnswer(holderID: holder.id, secret: .otp)
        let token = randomBytes(32)
        let device = fixture.makeDevice(holderID: holder.id)
        try await store.createDeviceRebind(tokenHash: token, device: device, createdAt: now, expiresAt: now.addingTimeInterval(3600))
        let pending = try #require(try await store.deviceRebind(tokenHash: token))
        #expect(pending.device.secret == device.secret && pending.device.holderID == holder.id && pending.device.kind == device.kind)
        #expect(pending.expiresAt == now.addingTimeInterval(3600) && pending.usedAt == nil)

        let wins = try await concurrently(20) { _ in try await store.completeDeviceRebind(tokenHash: token, device: device, now: now) }
        #expect(wins.filter { $0 }.count == 1)
        let active = try #require(try await store.activeOTPDevice(holderID: holder.id))
        #expect(active.id == device.id && active.secret == device.secret)
        #expect(try await store.advanceTOTP(deviceID: oldDevice.id, to: 1_000) == false)
        #expect(try await store.sad(idHash: sad.idHash) == nil)
        #expect(try await store.secretFailures(holderID: holder.id).otp == 0)
        #expect(try await store.deviceRebind(tokenHash: token)?.usedAt == now)

        let expired = randomBytes(32)
        let another = fixture.makeDevice(holderID: holder.id)
        try await store.createDeviceRebind(tokenHash: expired, device: another, createdAt: now, expiresAt: now.addingTimeInterval(60))
        #expect(try await store.completeDeviceRebind(tokenHash: expired, device: another, now: now.addingTimeInterval(60)) == false)
        #expect(try await store.activeOTPDevice(holderID: holder.id)?.id == device.id)
    }

    // MARK: CredentialStore and PKIStateStore

    @Test("CredentialStore: of two renewals racing for one credential, only one is stored", arguments: StoreKind.allCases)
    func renewalsRace(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let (holder, _, credential) = try await fixture.activeHolder()
        let renewals = (0..<10).map { _ in fixture.makeCredential(holderID: holder.id) }
        let wins = try await concurrently(10) { index in try await store.addRenewedCredential(renewals[index], replacing: credential.id) }
        #expect(wins.filter { $0 }.count == 1)
        #expect(try await store.credentials(holderID: holder.id).count == 2)
    }

    @Test("CredentialStore: changeCredentialStatus is compare-and-set and deletes the SADs", arguments: StoreKind.allCases)
    func credentialStatusCompareAndSet(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let (_, _, credential) = try await fixture.activeHolder()
        let sad = try await fixture.newSAD(credential)
        let wins = try await concurrently(20) { _ in try await store.changeCredentialStatus(id: credential.id, from: .active, to: .suspended, at: now) }
        #expect(wins.filter { $0 }.count == 1)
        let suspended = try #require(try await store.credential(id: credential.id))
        #expect(suspended.status == .suspended && suspended.suspendedAt == now)
        #expect(try await store.sad(idHash: sad.idHash) == nil)
        #expect(try await store.unusableCredentials().map(\.id) == [credential.id])

        let again = try await fixture.newSAD(credential)
        #expect(try await store.changeCredentialStatus(id: credential.id, from: .active, to: .suspended, at: now) == false)
        #expect(try await store.sad(idHash: again.idHash) == again)
        #expect(try await store.changeCredentialStatus(id: credential.id, from: .suspended, to: .active, at: now))
        #expect(try await store.credential(id: credential.id)?.status == .active)
        #expect(try await store.unusableCredentials().isEmpty)
    }

    @Test("CredentialStore: revokeCredential succeeds once, deletes the SADs, and refuses an unknown credential", arguments: StoreKind.allCases)
    func revokeCredentialOnce(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let (_, _, credential) = try await fixture.activeHolder()
        let sad = try await fixture.newSAD(credential)
        let wins = try await concurrently(20) { _ in try await store.revokeCredential(id: credential.id, reason: .keyCompromise, at: now) }
        #expect(wins.filter { $0 }.count == 1)
        #expect(try await store.revokeCredential(id: credential.id, reason: .superseded, at: now.addingTimeInterval(60)) == false)
        let revoked = try #require(try await store.credential(id: credential.id))
        #expect(revoked.status == .revoked && revoked.revocationReason == .keyCompromise && revoked.revokedAt == now)
        #expect(try await store.sad(idHash: sad.idHash) == nil)
        #expect(try await store.credential(serialNumber: credential.serialNumber)?.id == credential.id)
        let error = try await sigilloError { _ = try await store.revokeCredential(id: "no-such-credential", reason: .unspecified, at: now) }
        #expect(error?.code == .notFound)
    }

    @Test("CredentialStore: expiring credentials, reminders and renewal of an active credential only", arguments: StoreKind.allCases)
    func credentialExpiryAndRenewal(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let (holder, _, credential) = try await fixture.activeHolder()
        #expect(try await store.credentialsExpiring(before: credential.notAfter).isEmpty)
        #expect(try await store.credentialsExpiring(before: credential.notAfter.addingTimeInterval(1)).map(\.id) == [credential.id])
        try await store.setLastReminder(credentialID: credential.id, days: 30)
        #expect(try await store.credential(id: credential.id)?.lastReminderDays == 30)

        #expect(try await store.transitionHolder(id: holder.id, from: [.active], to: .expiring))
        var renewed = fixture.makeCredential(holderID: holder.id)
        renewed.notBefore = fixture.now
        #expect(try await store.addRenewedCredential(renewed, replacing: credential.id))
        #expect(try await store.holder(id: holder.id)?.state == .active)
        #expect(Set(try await store.credentials(holderID: holder.id).map(\.id)) == [credential.id, renewed.id])

        #expect(try await store.changeCredentialStatus(id: credential.id, from: .active, to: .suspended, at: fixture.now))
        let refused = fixture.makeCredential(holderID: holder.id)
        #expect(try await store.addRenewedCredential(refused, replacing: credential.id) == false)
        #expect(try await store.credential(id: refused.id) == nil)
    }

    @Test("PKIStateStore: CRL numbers start at 1, increase, and are never handed out twice", arguments: StoreKind.allCases)
    func crlNumbersUnique(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        #expect(try await store.nextCRLNumber() == 1)
        #expect(try await store.nextCRLNumber() == 2)
        let numbers = try await concurrently(20) { _ in try await store.nextCRLNumber() }
        #expect(numbers.sorted() == Array(3...22))
        #expect(try await store.nextCRLNumber() == 23)
    }

    // MARK: AuditStore

    @Test("AuditStore: 50 concurrent appends make one intact chain; the high-water mark follows", arguments: StoreKind.allCases)
    func auditChain(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        #expect(try await store.auditSequenceHighWater() == nil)
        _ = try await concurrently(50) { index in
            try await store.audit(AuditEvent(actor: "test", action: "test.concurrent", target: "\(index)", outcome: "ok"), at: now.addingTimeInterval(Double(index)))
        }
        let records = try await store.auditRecords()
        #expect(records.count == 50)
        #expect(Set(records.map(\.event.target)) == Set((0..<50).map { "\($0)" }))
        #expect(zip(records, records.dropFirst()).allSatisfy { $0.sequence < $1.sequence })
        #expect(AuditChain.firstBrokenRecord(records) == nil)
        #expect(try await store.auditSequenceHighWater() == records.last?.sequence)

        // The check can fail: a record whose event was altered breaks the chain there.
        var altered = records
        altered[10].event.outcome = "tampered"
        #expect(AuditChain.firstBrokenRecord(altered) == altered[10])
    }
}
