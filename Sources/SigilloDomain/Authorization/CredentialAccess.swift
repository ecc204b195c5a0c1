import Foundation

/// Looks up a holder's credentials as the use cases need them.
struct CredentialAccess: Sendable {
    let store: any CredentialStore
    let clock: ServiceClock
    /// Holder keys, to drop a refused credential's unwrapped key from this node's workers.
    let keys: HolderKeys

    /// The credential if it belongs to the holder, is active and its certificate is valid now.
    func usable(_ credentialID: String, holderID: String) async throws -> Credential {
        guard let credential = try await self.store.credential(id: credentialID) else {
            throw SigilloError(.notFound, "unknown credential")
        }
        return try self.check(credential, holderID: holderID)
    }

    /// As `usable`, with the row's version (`CredentialStore.versionedCredential`), for the signing hot path's cache.
    func usableVersioned(_ credentialID: String, holderID: String) async throws -> (credential: Credential, version: Int64) {
        guard let found = try await self.store.versionedCredential(id: credentialID) else {
            throw SigilloError(.notFound, "unknown credential")
        }
        return (try self.check(found.credential, holderID: holderID), found.version)
    }

    /// `credential` if it is the holder's, active and its certificate valid now.
    private func check(_ credential: Credential, holderID: String) throws -> Credential {
        guard credential.holderID == holderID else {
            throw SigilloError(.notFound, "unknown credential")
        }
        switch credential.status {
        case .active: break
        case .suspended, .revoked:
            // Revoked or suspended on another node, maybe: this node's workers drop their unwrapped copy too.
            self.keys.evict(credential.id)
            throw SigilloError(.credentialDisabled, "the credential is \(credential.status.rawValue)")
        }
        let now = self.clock.now()
        guard now >= credential.notBefore, now < credential.notAfter else {
            throw SigilloError(.certificateInvalid, "the certificate is not valid now (valid \(credential.notBefore) to \(credential.notAfter))")
        }
        return credential
    }

    /// The credential whose counters stand for the holder's (the newest active one, else the newest at all).
    func primary(_ holder: Holder) async throws -> Credential {
        let credentials = try await self.store.credentials(holderID: holder.id)
        guard let credential = credentials.last(where: { $0.status == .active }) ?? credentials.last(where: { $0.status == .suspended }) else {
            throw SigilloError(.credentialDisabled, "the account has no usable credential")
        }
        return credential
    }
}
