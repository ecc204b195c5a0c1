import Foundation
import PKCS11

/// The hot path (CSC `signatures/signHash`): a SAD's hashes signed in the token, nothing else.
public struct Signing: Sendable {
    let store: any SADStore
    let credentials: CredentialAccess
    let keys: HolderKeys
    let audit: AuditLog
    let clock: ServiceClock

    /// Signs `hashes` under a SAD (CSC `signatures/signHash`): every hash must be one the SAD authorized,
    /// the SAD must have that many signatures left, and the credential and its certificate must be valid now.
    /// A refused request is audited once (`signature.sign`, outcome `refused`, the reason in the details); a signed one
    /// once (`ok`), as before.
    ///
    /// - Parameter credentialToken: `sad` is an OAuth2 credential-scoped access token (the bearer token), not a SAD from
    ///   `credentials/authorize`: each is accepted only in its own place.
    /// - Returns: the signatures in input order.
    public func signHash(holderID: String, credentialID: String, sad: String, hashes: [[UInt8]], mechanism: SignatureMechanism,
                         credentialToken: Bool = false) async throws -> [[UInt8]] {
        let (record, credential): (SADRecord, Credential)
        do {
            (record, credential) = try await self.spend(holderID: holderID, credentialID: credentialID, sad: sad, hashes: hashes, mechanism: mechanism,
                                                        credentialToken: credentialToken)
        } catch let refusal as SigilloError {
            try await self.audit.record(holderID, "signature.sign", target: credentialID, outcome: "refused", details: refusal.message)
            throw refusal
        }
        do {
            let signatures = try await self.keys.sign(digests: hashes, credential: credential, mechanism: mechanism)
            try await self.audit.record(holderID, "signature.sign", target: credentialID, outcome: "ok", details: "signatures=\(signatures.count)")
            return signatures
        } catch {
            try? await self.store.refundSAD(idHash: record.idHash, count: hashes.count)
            try? await self.audit.record(holderID, "signature.sign", target: credentialID, outcome: "failed", details: "\(error)")
            throw error
        }
    }

    /// Every check before the token: the SAD is this holder's for this credential, unexpired, for these digests and
    /// this hash algorithm; the credential usable with this mechanism; then `hashes.count` signatures spent atomically.
    ///
    /// - Throws: a `SigilloError` saying what was refused (its message goes to the audit record; no secret in it).
    private func spend(holderID: String, credentialID: String, sad: String, hashes: [[UInt8]], mechanism: SignatureMechanism,
                       credentialToken: Bool) async throws -> (SADRecord, Credential) {
        guard !hashes.isEmpty else { throw SigilloError(.invalidRequest, "the hashes to sign are missing") }
        let record = try await self.store.validSAD(sad, holderID: holderID, credentialID: credentialID, now: self.clock.now())
        guard (record.clientID != nil) == credentialToken else {
            throw SigilloError(.invalidSAD, credentialToken ? "the access token is not a credential token" : "an OAuth2 access token is not a SAD")
        }
        guard mechanism.hash == record.hashAlgorithm else {
            throw SigilloError(.invalidRequest, "the SAD was issued for \(record.hashAlgorithm.rawValue) digests")
        }
        let authorized = Set(record.hashes)
        guard hashes.allSatisfy(authorized.contains) else {
            throw SigilloError(.invalidSAD, "a hash was not authorized by this SAD")
        }
        let credential = try await self.credentials.usable(credentialID, holderID: holderID)
        guard mechanism.isRSA == credential.keyAlgorithm.isRSA else {
            throw SigilloError(.invalidRequest, "the signature algorithm does not match the credential's \(credential.keyAlgorithm.rawValue) key")
        }
        guard try await self.store.consumeSAD(idHash: record.idHash, count: hashes.count, now: self.clock.now()) else {
            throw SigilloError(.invalidSAD, "the SAD has no signatures left or has expired")
        }
        return (record, credential)
    }
}
