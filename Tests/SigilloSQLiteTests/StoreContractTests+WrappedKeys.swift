import Foundation
import PKCS11
import SigilloDomain
import SigilloTestSupport
import Testing

extension StoreContractTests {
    // MARK: Wrapped holder keys (issue 13)

    @Test("CredentialStore: the wrapped key and public key are kept with the credential, through renewal; revocation deletes the wrapped key with the status change",
          arguments: StoreKind.allCases)
    func wrappedKeyColumns(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let (holder, codeHash) = try await fixture.invitedHolder()
        var credential = fixture.makeCredential(holderID: holder.id)
        credential.wrappedKey = randomBytes(150)
        credential.publicKey = randomBytes(91)
        try await store.completeActivation(
            codeHash: codeHash, at: fixture.now, username: "user-\(UUID().uuidString.prefix(8).lowercased())", passwordHash: "argon2-hash",
            device: fixture.makeDevice(holderID: holder.id), credential: credential)
        #expect(try await store.credential(id: credential.id) == credential)

        // A token-object credential has neither.
        let (other, _, plain) = try await fixture.activeHolder()
        #expect(try await store.credential(id: plain.id)?.wrappedKey == nil)
        #expect(try await store.credential(id: plain.id)?.publicKey == nil)

        // A renewal stores the new credential's wrapped key.
        var renewed = fixture.makeCredential(holderID: holder.id)
        renewed.wrappedKey = randomBytes(160)
        renewed.publicKey = randomBytes(91)
        #expect(try await store.addRenewedCredential(renewed, replacing: credential.id))
        #expect(try await store.credential(id: renewed.id) == renewed)

        // Revocation: the wrapped key goes with the status change, the public key stays (the certificate has it anyway).
        #expect(try await store.revokeCredential(id: credential.id, reason: .superseded, at: fixture.now))
        let revoked = try #require(try await store.credential(id: credential.id))
        #expect(revoked.status == .revoked && revoked.wrappedKey == nil && revoked.publicKey == credential.publicKey)
        #expect(try await store.credential(id: renewed.id)?.wrappedKey == renewed.wrappedKey, "only the revoked credential's key goes")
        #expect(try await !store.revokeCredential(id: credential.id, reason: .superseded, at: fixture.now))
        _ = other
    }
}
