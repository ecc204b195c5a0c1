import Foundation
import PKCS11
import SigilloDomain
import SigilloSQLite
import SigilloTestSupport
import Testing

extension StoreContractTests {
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

    @Test("HolderStore: a new user code replaces the old one and clears its lock", arguments: StoreKind.allCases)
    func userCodeReplaced(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let holder = try await fixture.newHolder()
        #expect(try await store.userCode(holderID: holder.id) == nil)
        try await store.setUserCodeHash(holderID: holder.id, hash: "code-hash")
        #expect(try await store.userCode(holderID: holder.id) == "code-hash")
        for _ in 0..<5 { try await store.recordWrongAnswer(holderID: holder.id, secret: .userCode) }
        #expect(try await store.secretFailures(holderID: holder.id).userCodeBlocked)
        try await store.setUserCodeHash(holderID: holder.id, hash: "new-hash")
        #expect(try await store.userCode(holderID: holder.id) == "new-hash")
        #expect(try await store.secretFailures(holderID: holder.id).userCode == 0)
    }
}
