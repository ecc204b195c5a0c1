import Foundation
import SigilloDomain
import Testing

/// `SADStore.spendSAD` (issue 16): the one statement of signHash's hot path re-checks what a node may have cached.
extension StoreContractTests {
    private func spending(_ sad: SADRecord, version: Int64, token: [UInt8]? = nil, count: Int = 1, now: Date) -> SADSpending {
        SADSpending(idHash: sad.idHash, holderID: sad.holderID, credentialID: sad.credentialID, count: count, now: now, credentialVersion: version,
                    accessTokenHash: token, audit: AuditEvent(actor: sad.holderID, action: "signature.sign", target: sad.credentialID, outcome: "ok",
                                                             details: "signatures=\(count)"))
    }

    private func signedRecords(_ store: any Store, _ credentialID: String) async throws -> Int {
        try await store.auditRecords().filter { $0.event.action == "signature.sign" && $0.event.target == credentialID }.count
    }

    @Test("SADStore.spendSAD: spends only at the credential row's current version, with its audit record, or changes nothing", arguments: StoreKind.allCases)
    func spendChecksTheCredentialVersion(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let (_, _, credential) = try await fixture.activeHolder()
        let sad = try await fixture.newSAD(credential, numSignatures: 5)
        let (read, version) = try #require(try await store.versionedCredential(id: credential.id))
        #expect(try await store.credential(id: credential.id) == read)
        #expect(try await store.versionedCredential(id: "no-such-credential") == nil)

        #expect(try await store.spendSAD(self.spending(sad, version: version, count: 2, now: now)))
        #expect(try await store.sad(idHash: sad.idHash)?.used == 2)
        #expect(try await self.signedRecords(store, credential.id) == 1)
        #expect(AuditChain.firstBrokenRecord(try await store.auditRecords()) == nil)

        // Any update of the row moves the version on, even one that changes nothing signing needs.
        try await store.setLastReminder(credentialID: credential.id, days: 90)
        let (_, next) = try #require(try await store.versionedCredential(id: credential.id))
        #expect(next != version)
        #expect(try await store.spendSAD(self.spending(sad, version: version, now: now)) == false)
        #expect(try await store.sad(idHash: sad.idHash)?.used == 2)
        #expect(try await self.signedRecords(store, credential.id) == 1)
        #expect(try await store.spendSAD(self.spending(sad, version: next, now: now)))

        // Suspended at the version it now has: refused all the same (the SAD is kept by this store call).
        try await store.setCredentialStatus(id: credential.id, status: .suspended)
        let (_, suspended) = try #require(try await store.versionedCredential(id: credential.id))
        #expect(try await store.spendSAD(self.spending(sad, version: suspended, now: now)) == false)
        try await store.setCredentialStatus(id: credential.id, status: .active)
        let (_, reinstated) = try #require(try await store.versionedCredential(id: credential.id))
        #expect(Set([version, next, suspended, reinstated]).count == 4)

        // Count, expiry and binding are the SAD's as before.
        #expect(try await store.spendSAD(self.spending(sad, version: reinstated, count: 3, now: now)) == false)
        #expect(try await store.spendSAD(self.spending(sad, version: reinstated, now: sad.expiresAt)) == false)
        var other = sad
        other.holderID = "someone-else"
        #expect(try await store.spendSAD(self.spending(other, version: reinstated, now: now)) == false)
        #expect(try await store.sad(idHash: sad.idHash)?.used == 3)
        #expect(try await self.signedRecords(store, credential.id) == 2)
        #expect(AuditChain.firstBrokenRecord(try await store.auditRecords()) == nil)
    }

    @Test("SADStore.spendSAD: a given access token must be the holder's, unrevoked and unexpired", arguments: StoreKind.allCases)
    func spendChecksTheAccessToken(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let (holder, _, credential) = try await fixture.activeHolder()
        let sad = try await fixture.newSAD(credential, numSignatures: 10, lifetime: 7200)
        let (_, version) = try #require(try await store.versionedCredential(id: credential.id))
        let token = randomBytes(32)
        try await store.createAccessToken(tokenHash: token, holderID: holder.id, expiresAt: now.addingTimeInterval(1800))
        let (someone, _, _) = try await fixture.activeHolder()
        let othersToken = randomBytes(32)
        try await store.createAccessToken(tokenHash: othersToken, holderID: someone.id, expiresAt: now.addingTimeInterval(1800))

        #expect(try await store.spendSAD(self.spending(sad, version: version, token: token, now: now)))
        #expect(try await store.spendSAD(self.spending(sad, version: version, token: randomBytes(32), now: now)) == false)
        #expect(try await store.spendSAD(self.spending(sad, version: version, token: othersToken, now: now)) == false)
        #expect(try await store.spendSAD(self.spending(sad, version: version, token: token, now: now.addingTimeInterval(1800))) == false)
        try await store.revokeAccessTokens(holderID: holder.id)
        #expect(try await store.spendSAD(self.spending(sad, version: version, token: token, now: now)) == false)
        // Without a token to check (the caller checked it), the SAD is spent as before.
        #expect(try await store.spendSAD(self.spending(sad, version: version, now: now)))
        #expect(try await store.sad(idHash: sad.idHash)?.used == 2)
        #expect(try await self.signedRecords(store, credential.id) == 2)
    }
}
