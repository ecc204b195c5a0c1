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

    @Test("OTPStore: an SMS code is consumed once, and not after it expires", arguments: StoreKind.allCases)
    func smsCodeConsumedOnce(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let holder = try await fixture.newHolder()
        let code = randomBytes(32)
        try await store.storeSMSCode(holderID: holder.id, codeHash: code, expiresAt: now.addingTimeInterval(300))
        #expect(try await store.consumeSMSCode(holderID: holder.id, codeHash: randomBytes(32), now: now) == false)
        let wins = try await concurrently(20) { _ in try await store.consumeSMSCode(holderID: holder.id, codeHash: code, now: now) }
        #expect(wins.filter { $0 }.count == 1)
        #expect(try await store.consumeSMSCode(holderID: holder.id, codeHash: code, now: now) == false)

        let late = randomBytes(32)
        try await store.storeSMSCode(holderID: holder.id, codeHash: late, expiresAt: now.addingTimeInterval(300))
        #expect(try await store.consumeSMSCode(holderID: holder.id, codeHash: late, now: now.addingTimeInterval(300)) == false)
        #expect(try await store.consumeSMSCode(holderID: holder.id, codeHash: late, now: now.addingTimeInterval(299)))
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
        #expect(try await store.completeMobileChange(holderID: holder.id, codeHash: randomBytes(32), now: now) == nil)
        let results = try await concurrently(20) { _ in try await store.completeMobileChange(holderID: holder.id, codeHash: code, now: now) }
        #expect(results.compactMap { $0 } == [mobile])
        #expect(try await store.holder(id: holder.id)?.mobile == mobile)
        #expect(try await store.holder(mobile: mobile)?.id == holder.id)
        #expect(try await store.completeMobileChange(holderID: holder.id, codeHash: code, now: now) == nil)

        // Expired.
        let expiring = randomBytes(32)
        try await store.storeMobileChange(holderID: holder.id, mobile: randomMobile(), codeHash: expiring, expiresAt: now.addingTimeInterval(60))
        #expect(try await store.completeMobileChange(holderID: holder.id, codeHash: expiring, now: now.addingTimeInterval(60)) == nil)
        #expect(try await store.holder(id: holder.id)?.mobile == mobile)

        // Another holder registered the number meanwhile.
        let wanted = randomMobile()
        let taken = randomBytes(32)
        try await store.storeMobileChange(holderID: holder.id, mobile: wanted, codeHash: taken, expiresAt: now.addingTimeInterval(600))
        var other = fixture.makeHolder()
        other.mobile = wanted
        try await store.createHolder(other)
        let error = try await sigilloError { _ = try await store.completeMobileChange(holderID: holder.id, codeHash: taken, now: now) }
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
        _ = try await store.recordFailure(credentialID: credential.id, kind: .otp)
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
        #expect(try await store.credential(id: credential.id)?.otpFailures == 0)
        #expect(try await store.deviceRebind(tokenHash: token)?.usedAt == now)

        let expired = randomBytes(32)
        let another = fixture.makeDevice(holderID: holder.id)
        try await store.createDeviceRebind(tokenHash: expired, device: another, createdAt: now, expiresAt: now.addingTimeInterval(60))
        #expect(try await store.completeDeviceRebind(tokenHash: expired, device: another, now: now.addingTimeInterval(60)) == false)
        #expect(try await store.activeOTPDevice(holderID: holder.id)?.id == device.id)
    }

    // MARK: CredentialStore and PKIStateStore

    @Test("CredentialStore: 20 concurrent failures count 20; resetFailures clears both", arguments: StoreKind.allCases)
    func failuresCounted(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let (_, _, credential) = try await fixture.activeHolder()
        let counts = try await concurrently(20) { _ in try await store.recordFailure(credentialID: credential.id, kind: .password) }
        #expect(counts.sorted() == Array(1...20))
        #expect(try await store.recordFailure(credentialID: credential.id, kind: .otp) == 1)
        #expect(try await store.recordFailure(credentialID: credential.id, kind: .otp) == 2)
        let counted = try #require(try await store.credential(id: credential.id))
        #expect(counted.passwordFailures == 20 && counted.otpFailures == 2 && counted.pinLocked)
        try await store.resetFailures(credentialID: credential.id)
        let reset = try #require(try await store.credential(id: credential.id))
        #expect(reset.passwordFailures == 0 && reset.otpFailures == 0)
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

    // MARK: HolderStore and EnrollmentStore

    @Test("HolderStore: a taken email, mobile, fiscal code or username is a conflict naming the field", arguments: StoreKind.allCases)
    func uniqueHolderFields(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let first = try await fixture.newHolder(username: "mario-\(UUID().uuidString.prefix(6))")
        #expect(try await store.holder(id: first.id) == first)
        #expect(try await store.holder(email: first.email) == first)
        #expect(try await store.holder(mobile: first.mobile) == first)
        #expect(try await store.holder(username: first.username!) == first)

        let taken: [(field: String, change: @Sendable (inout Holder) -> Void)] = [
            ("email", { $0.email = first.email }), ("mobile", { $0.mobile = first.mobile }),
            ("fiscal code", { $0.fiscalCode = first.fiscalCode }), ("username", { $0.username = first.username }),
        ]
        for (field, change) in taken {
            var copy = fixture.makeHolder()
            change(&copy)
            let error = try await sigilloError { try await store.createHolder(copy) }
            #expect(error?.code == .conflict, "\(field)")
            #expect(error?.message.contains(field) == true, "\(field): \(error?.message ?? "no error")")
            #expect(try await store.holder(id: copy.id) == nil)
        }
        #expect(try await store.holders() == [first])

        let second = try await fixture.newHolder()
        let error = try await sigilloError { try await store.setHolderMobile(id: second.id, mobile: first.mobile) }
        #expect(error?.code == .conflict)
        let missing = try await sigilloError { try await store.setHolderMobile(id: "no-such-holder", mobile: randomMobile()) }
        #expect(missing?.code == .notFound)
    }

    @Test("HolderStore: transitionHolder is compare-and-set; 20 racing, one wins", arguments: StoreKind.allCases)
    func transitionHolderCompareAndSet(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let holder = try await fixture.newHolder(state: .created)
        #expect(try await store.transitionHolder(id: holder.id, from: [.recognized, .invited], to: .active) == false)
        #expect(try await store.holder(id: holder.id)?.state == .created)
        let wins = try await concurrently(20) { _ in try await store.transitionHolder(id: holder.id, from: [.created], to: .paymentRegistered) }
        #expect(wins.filter { $0 }.count == 1)
        #expect(try await store.holder(id: holder.id)?.state == .paymentRegistered)
        #expect(try await store.transitionHolder(id: holder.id, from: [.created, .paymentRegistered], to: .awaitingProcessing))
        #expect(try await store.holder(id: holder.id)?.state == .awaitingProcessing)
    }

    @Test("EnrollmentStore: completeActivation succeeds once per invitation; the others get invitationUsed", arguments: StoreKind.allCases)
    func completeActivationOnce(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let (holder, codeHash) = try await fixture.invitedHolder()
        let pending = fixture.makeDevice(holderID: holder.id)
        try await store.setPendingDevice(codeHash: codeHash, device: pending)
        #expect(try await store.invitation(codeHash: codeHash)?.pendingDevice?.secret == pending.secret)

        let attempts = (0..<20).map { _ in (device: fixture.makeDevice(holderID: holder.id), credential: fixture.makeCredential(holderID: holder.id)) }
        let outcomes = try await concurrently(20) { index in
            try await sigilloError {
                try await store.completeActivation(
                    codeHash: codeHash, at: now, username: "user-\(index)-\(holder.id.prefix(6))", passwordHash: "hash-\(index)",
                    device: attempts[index].device, credential: attempts[index].credential)
            }
        }
        #expect(outcomes.filter { $0 == nil }.count == 1)
        #expect(outcomes.compactMap { $0?.code }.allSatisfy { $0 == .invitationUsed })
        #expect(try await store.invitation(codeHash: codeHash)?.usedAt == now)
        let active = try #require(try await store.holder(id: holder.id))
        #expect(active.state == .active)
        let username = try #require(active.username)
        let index = try #require(Int(username.split(separator: "-")[1]))
        #expect(active.passwordHash == "hash-\(index)")
        #expect(try await store.activeOTPDevice(holderID: holder.id) == attempts[index].device)
        #expect(try await store.credentials(holderID: holder.id) == [attempts[index].credential])

        let again = try await sigilloError {
            try await store.completeActivation(codeHash: codeHash, at: now, username: "late", passwordHash: "late", device: fixture.makeDevice(holderID: holder.id),
                                               credential: fixture.makeCredential(holderID: holder.id))
        }
        #expect(again?.code == .invitationUsed)
        let pendingAfter = try await sigilloError { try await store.setPendingDevice(codeHash: codeHash, device: nil) }
        #expect(pendingAfter?.code == .invitationUsed)
    }

    @Test("EnrollmentStore: an activation with a taken username changes nothing, and the invitation stays usable", arguments: StoreKind.allCases)
    func activationAllOrNothing(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let (first, _, _) = try await fixture.activeHolder()
        let (holder, codeHash) = try await fixture.invitedHolder()
        let takenUsername = try #require(try await store.holder(id: first.id)?.username)
        let credential = fixture.makeCredential(holderID: holder.id)
        let error = try await sigilloError {
            try await store.completeActivation(codeHash: codeHash, at: now, username: takenUsername, passwordHash: "hash",
                                               device: fixture.makeDevice(holderID: holder.id), credential: credential)
        }
        #expect(error?.code == .conflict)
        #expect(try await store.invitation(codeHash: codeHash)?.usedAt == nil)
        #expect(try await store.holder(id: holder.id)?.state == .invited)
        #expect(try await store.activeOTPDevice(holderID: holder.id) == nil)
        #expect(try await store.credential(id: credential.id) == nil)

        try await store.completeActivation(codeHash: codeHash, at: now, username: "free-\(holder.id.prefix(8))", passwordHash: "hash",
                                           device: fixture.makeDevice(holderID: holder.id), credential: credential)
        #expect(try await store.credential(id: credential.id) == credential)
    }

    @Test("EnrollmentStore: hardware tokens are imported once per serial, seeds round-trip", arguments: StoreKind.allCases)
    func hardwareTokens(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let first = HardwareToken(serial: "HW-\(randomHex(4))", seed: randomBytes(20))
        let second = HardwareToken(serial: "HW-\(randomHex(4))", seed: randomBytes(32), digits: 8, algorithm: .sha256)
        #expect(try await store.importHardwareTokens([first, second], at: fixture.now) == 2)
        let replaced = HardwareToken(serial: first.serial, seed: randomBytes(20))
        let third = HardwareToken(serial: "HW-\(randomHex(4))", seed: randomBytes(20))
        #expect(try await store.importHardwareTokens([replaced, third], at: fixture.now) == 1)
        #expect(try await store.hardwareToken(serial: first.serial) == first)
        #expect(try await store.hardwareToken(serial: second.serial) == second)
        #expect(try await store.hardwareToken(serial: "HW-unknown") == nil)
    }

    @Test("HolderStore: user code attempts count under concurrency and reset on success", arguments: StoreKind.allCases)
    func userCodeAttempts(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let holder = try await fixture.newHolder()
        #expect(try await store.userCode(holderID: holder.id) == nil)
        try await store.setUserCodeHash(holderID: holder.id, hash: "code-hash")
        #expect(try await store.userCode(holderID: holder.id)?.failures == 0)
        let counts = try await concurrently(20) { _ in try await store.recordUserCodeAttempt(holderID: holder.id, success: false) }
        #expect(counts.sorted() == Array(1...20))
        let counted = try #require(try await store.userCode(holderID: holder.id))
        #expect(counted.hash == "code-hash" && counted.failures == 20)
        #expect(try await store.recordUserCodeAttempt(holderID: holder.id, success: true) == 0)
        #expect(try await store.userCode(holderID: holder.id)?.failures == 0)
        #expect(try await store.recordUserCodeAttempt(holderID: holder.id, success: false) == 1)
        try await store.setUserCodeHash(holderID: holder.id, hash: "new-hash")
        let fresh = try #require(try await store.userCode(holderID: holder.id))
        #expect(fresh.hash == "new-hash" && fresh.failures == 0)
    }

    // MARK: ThrottleStore

    @Test("ThrottleStore: limit 5, 20 concurrent callers: exactly 5 admitted, again once the window moved on", arguments: StoreKind.allCases)
    func throttleAdmitsLimit(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let key = "sms:\(UUID().uuidString)"
        let admitted = try await concurrently(20) { _ in try await store.admit(throttle: key, now: now, window: 60, limit: 5, count: 1) }
        #expect(admitted.filter { $0 }.count == 5)
        #expect(try await store.admit(throttle: key, now: now.addingTimeInterval(30), window: 60, limit: 5, count: 1) == false)
        #expect(try await store.admit(throttle: "other:\(key)", now: now.addingTimeInterval(30), window: 60, limit: 5, count: 1))
        let later = now.addingTimeInterval(61)
        #expect(try await store.admit(throttle: key, now: later, window: 60, limit: 5, count: 1))

        // Several events at once: all counted, or (over the limit) none.
        #expect(try await store.admit(throttle: key, now: later, window: 60, limit: 5, count: 3))
        #expect(try await store.admit(throttle: key, now: later, window: 60, limit: 5, count: 2) == false)
        #expect(try await store.admit(throttle: key, now: later, window: 60, limit: 5, count: 1))
        #expect(try await store.admit(throttle: key, now: later, window: 60, limit: 5, count: 1) == false)
    }

    // MARK: AccessTokenStore and PasswordResetStore

    @Test("AccessTokenStore: tokens resolve to their holder until revoked, one or all of a holder's", arguments: StoreKind.allCases)
    func accessTokens(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let expiry = fixture.now.addingTimeInterval(3600)
        let holder = try await fixture.newHolder()
        let other = try await fixture.newHolder()
        let (one, two, theirs) = (randomBytes(32), randomBytes(32), randomBytes(32))
        try await store.createAccessToken(tokenHash: one, holderID: holder.id, expiresAt: expiry)
        try await store.createAccessToken(tokenHash: two, holderID: holder.id, expiresAt: expiry)
        try await store.createAccessToken(tokenHash: theirs, holderID: other.id, expiresAt: expiry)
        let found = try #require(try await store.accessToken(tokenHash: one))
        #expect(found.holderID == holder.id && found.expiresAt == expiry)
        #expect(try await store.accessToken(tokenHash: randomBytes(32)) == nil)
        try await store.revokeAccessToken(tokenHash: one)
        #expect(try await store.accessToken(tokenHash: one) == nil)
        #expect(try await store.accessToken(tokenHash: two)?.holderID == holder.id)
        try await store.revokeAccessTokens(holderID: holder.id)
        #expect(try await store.accessToken(tokenHash: two) == nil)
        #expect(try await store.accessToken(tokenHash: theirs)?.holderID == other.id)
    }

    @Test("PasswordResetStore: a reset completes once and ends sessions, SADs, failures and the other links", arguments: StoreKind.allCases)
    func passwordResetOnce(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let (holder, _, credential) = try await fixture.activeHolder()
        let sad = try await fixture.newSAD(credential)
        let session = randomBytes(32)
        try await store.createAccessToken(tokenHash: session, holderID: holder.id, expiresAt: now.addingTimeInterval(3600))
        _ = try await store.recordFailure(credentialID: credential.id, kind: .password)
        let (link, otherLink) = (randomBytes(32), randomBytes(32))
        try await store.createPasswordReset(tokenHash: link, holderID: holder.id, createdAt: now, expiresAt: now.addingTimeInterval(3600))
        try await store.createPasswordReset(tokenHash: otherLink, holderID: holder.id, createdAt: now, expiresAt: now.addingTimeInterval(3600))
        let stored = try #require(try await store.passwordReset(tokenHash: link))
        #expect(stored.holderID == holder.id && stored.expiresAt == now.addingTimeInterval(3600) && stored.usedAt == nil)

        let results = try await concurrently(20) { index in try await store.completePasswordReset(tokenHash: link, passwordHash: "new-\(index)", now: now) }
        #expect(results.compactMap { $0 } == [holder.id])
        let passwordHash = try #require(try await store.holder(id: holder.id)?.passwordHash)
        #expect(passwordHash.hasPrefix("new-"))
        #expect(try await store.passwordReset(tokenHash: link)?.usedAt == now)
        #expect(try await store.accessToken(tokenHash: session) == nil)
        #expect(try await store.sad(idHash: sad.idHash) == nil)
        #expect(try await store.credential(id: credential.id)?.passwordFailures == 0)
        #expect(try await store.completePasswordReset(tokenHash: otherLink, passwordHash: "other", now: now) == nil)
        #expect(try await store.passwordReset(tokenHash: otherLink)?.usedAt != nil)
        #expect(try await store.holder(id: holder.id)?.passwordHash == passwordHash)

        let expiring = randomBytes(32)
        try await store.createPasswordReset(tokenHash: expiring, holderID: holder.id, createdAt: now, expiresAt: now.addingTimeInterval(60))
        #expect(try await store.completePasswordReset(tokenHash: expiring, passwordHash: "late", now: now.addingTimeInterval(60)) == nil)
        #expect(try await store.completePasswordReset(tokenHash: randomBytes(32), passwordHash: "unknown", now: now) == nil)
        #expect(try await store.holder(id: holder.id)?.passwordHash == passwordHash)
    }

    // MARK: MailOutboxStore and MessageOutboxStore

    @Test("MailOutboxStore: two owners claiming concurrently never get the same mail", arguments: StoreKind.allCases)
    func mailClaimsNeverShared(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        for index in 0..<30 {
            try await store.enqueueMail(QueuedMail(kind: "test", recipient: "r\(index)@example.it", subject: "s", body: "b", createdAt: now.addingTimeInterval(Double(index))))
        }
        let future = QueuedMail(kind: "test", recipient: "later@example.it", subject: "s", body: "b", createdAt: now, nextAttemptAt: now.addingTimeInterval(3600))
        try await store.enqueueMail(future)
        #expect(try await store.nextMailDue() == now)

        let claims = try await concurrently(20) { index in
            let owner = index % 2 == 0 ? "A" : "B"
            let mails = try await store.claimDueMails(now: now.addingTimeInterval(30), owner: owner, leaseUntil: now.addingTimeInterval(600), limit: 4)
            return mails.map { (owner: owner, id: $0.id) }
        }.flatMap { $0 }
        #expect(claims.count == 30)
        #expect(Set(claims.map(\.id)).count == 30)
        #expect(!claims.map(\.id).contains(future.id))
        let mails = try await store.mails()
        #expect(mails.count == 31)
        for mail in mails where mail.id != future.id {
            #expect(mail.status == .sending && mail.attempts == 1)
        }
        #expect(try await store.claimDueMails(now: now.addingTimeInterval(30), owner: "C", leaseUntil: now.addingTimeInterval(600), limit: 100).isEmpty)
        // Whoever holds a mail may finish it; the other owner may not.
        for claim in claims.prefix(6) {
            let stranger = claim.owner == "A" ? "B" : "A"
            #expect(try await store.markMailSent(id: claim.id, owner: stranger, at: now) == false)
            #expect(try await store.markMailSent(id: claim.id, owner: claim.owner, at: now))
        }
    }

    @Test("MailOutboxStore: a lost claim cannot mark sent, retry or failed; retry and failure as promised", arguments: StoreKind.allCases)
    func mailLostClaim(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let mail = QueuedMail(kind: "test", recipient: "a@example.it", subject: "s", body: "b", createdAt: now)
        try await store.enqueueMail(mail)
        #expect(try await store.claimDueMails(now: now, owner: "A", leaseUntil: now.addingTimeInterval(60), limit: 10).map(\.id) == [mail.id])
        #expect(try await store.nextMailDue() == now.addingTimeInterval(60))
        #expect(try await store.claimDueMails(now: now.addingTimeInterval(59), owner: "B", leaseUntil: now.addingTimeInterval(120), limit: 10).isEmpty)
        // A's lease ran out: B takes the mail over, and A lost it.
        let taken = try await store.claimDueMails(now: now.addingTimeInterval(60), owner: "B", leaseUntil: now.addingTimeInterval(120), limit: 10)
        #expect(taken.map(\.id) == [mail.id] && taken.first?.attempts == 2)
        #expect(try await store.markMailSent(id: mail.id, owner: "A", at: now) == false)
        #expect(try await store.markMailRetry(id: mail.id, owner: "A", nextAttempt: now, error: "lost") == false)
        #expect(try await store.markMailFailed(id: mail.id, owner: "A", at: now, error: "lost") == false)
        #expect(try await store.mails().first?.status == .sending)

        // B gives it back for later.
        #expect(try await store.markMailRetry(id: mail.id, owner: "B", nextAttempt: now.addingTimeInterval(300), error: "451 try later"))
        let retried = try #require(try await store.mails().first)
        #expect(retried.status == .pending && retried.lastError == "451 try later" && retried.nextAttemptAt == now.addingTimeInterval(300))
        #expect(try await store.nextMailDue() == now.addingTimeInterval(300))
        #expect(try await store.markMailSent(id: mail.id, owner: "B", at: now) == false)
        #expect(try await store.claimDueMails(now: now.addingTimeInterval(299), owner: "A", leaseUntil: now.addingTimeInterval(900), limit: 10).isEmpty)
        #expect(try await store.claimDueMails(now: now.addingTimeInterval(300), owner: "A", leaseUntil: now.addingTimeInterval(900), limit: 10).count == 1)
        #expect(try await store.markMailFailed(id: mail.id, owner: "A", at: now.addingTimeInterval(301), error: "550 no such user"))
        let failed = try #require(try await store.mails().first)
        #expect(failed.status == .failed && failed.lastError == "550 no such user" && failed.finishedAt == now.addingTimeInterval(301) && failed.attempts == 3)
        #expect(try await store.nextMailDue() == nil)
        #expect(try await store.claimDueMails(now: now.addingTimeInterval(10_000), owner: "A", leaseUntil: now.addingTimeInterval(20_000), limit: 10).isEmpty)

        let sent = QueuedMail(kind: "test", recipient: "b@example.it", subject: "s", body: "b", createdAt: now.addingTimeInterval(1))
        try await store.enqueueMail(sent)
        #expect(try await store.claimDueMails(now: now.addingTimeInterval(1), owner: "A", leaseUntil: now.addingTimeInterval(60), limit: 10).map(\.id) == [sent.id])
        #expect(try await store.markMailSent(id: sent.id, owner: "A", at: now.addingTimeInterval(2)))
        #expect(try await store.markMailSent(id: sent.id, owner: "A", at: now.addingTimeInterval(3)) == false)
        #expect(try await store.mails().map(\.status) == [.failed, .sent])
    }

    @Test("MessageOutboxStore: queued messages come back in order", arguments: StoreKind.allCases)
    func messagesQueued(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let messages = [
            OutgoingMessage(channel: "sms", recipient: randomMobile(), body: "Sigillo: your code is 123456.", createdAt: fixture.now),
            OutgoingMessage(channel: "email", recipient: "a@example.it", subject: "Hello", body: "Body", createdAt: fixture.now.addingTimeInterval(1)),
        ]
        for message in messages { try await store.enqueueMessage(message) }
        #expect(try await store.pendingMessages() == messages)
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
