import Foundation
import PKCS11

/// The hot path (CSC `signatures/signHash`): a SAD's hashes signed in the token, nothing else.
///
/// A signature needs one database statement (`SADStore.spendSAD`: the SAD spent, the credential's row version, the
/// bearer token and the audit event, in one group-committed transaction) when this node has seen the SAD, the
/// credential and the token before (`HotPathCache`); otherwise, or when that statement refuses, the checks run on
/// fresh reads as they always did and say precisely what was refused.
public struct Signing: Sendable {
    let store: any SADStore & AccessTokenStore
    let credentials: CredentialAccess
    let keys: HolderKeys
    let audit: AuditLog
    let clock: ServiceClock
    let cache: HotPathCache

    /// Signs `hashes` under a SAD (CSC `signatures/signHash`): every hash must be one the SAD authorized,
    /// the SAD must have that many signatures left, and the credential and its certificate must be valid now.
    /// A refused request is audited once (`signature.sign`, outcome `refused`, the reason in the details); an accepted
    /// one once (`ok`, written with the SAD's spending, before the token signs; `failed` follows if the token fails).
    ///
    /// - Parameters:
    ///   - credentialToken: `sad` is an OAuth2 credential-scoped access token (the bearer token), not a SAD from
    ///     `credentials/authorize`: each is accepted only in its own place.
    ///   - accessToken: the request's bearer token when nothing checked it in the database yet
    ///     (`Authentication.cachedHolderID`): it is checked with the spending, and refused as `invalidToken` /
    ///     `expiredToken` (not audited, as the bearer check does).
    /// - Returns: the signatures in input order.
    public func signHash(holderID: String, credentialID: String, sad: String, hashes: [[UInt8]], mechanism: SignatureMechanism,
                         credentialToken: Bool = false, accessToken: String? = nil) async throws -> [[UInt8]] {
        guard !hashes.isEmpty else {
            try await self.audit.record(holderID, "signature.sign", target: credentialID, outcome: "refused", details: "the hashes to sign are missing")
            throw SigilloError(.invalidRequest, "the hashes to sign are missing")
        }
        let idHash = Secrets.digest(sad)
        let tokenHash = accessToken.map { Secrets.digest($0) }
        let credential: Credential
        if let cached = try await self.spendCached(holderID: holderID, credentialID: credentialID, idHash: idHash, tokenHash: tokenHash, hashes: hashes, mechanism: mechanism,
                                                   credentialToken: credentialToken) {
            credential = cached
        } else {
            if let tokenHash { try await self.checkToken(tokenHash) }
            do {
                credential = try await self.spend(holderID: holderID, credentialID: credentialID, idHash: idHash, tokenHash: tokenHash, hashes: hashes, mechanism: mechanism,
                                                  credentialToken: credentialToken)
            } catch let refusal as SigilloError {
                try await self.audit.record(holderID, "signature.sign", target: credentialID, outcome: "refused", details: refusal.message)
                throw refusal
            }
        }
        do {
            return try await self.keys.sign(digests: hashes, credential: credential, mechanism: mechanism)
        } catch {
            try? await self.store.refundSAD(idHash: idHash, count: hashes.count)
            try? await self.audit.record(holderID, "signature.sign", target: credentialID, outcome: "failed", details: "\(error)")
            throw error
        }
    }

    /// The fast way: SAD, credential and token as this node last read them, checked here, then spent with one
    /// statement that re-checks in the database whatever may have changed since. Nil when something is not cached,
    /// a check fails, or the statement refuses: the caller then goes the slow way (which refreshes the cache).
    private func spendCached(holderID: String, credentialID: String, idHash: [UInt8], tokenHash: [UInt8]?, hashes: [[UInt8]],
                             mechanism: SignatureMechanism, credentialToken: Bool) async throws -> Credential? {
        guard let sad = self.cache.sad(idHash), let entry = self.cache.credential(credentialID) else { return nil }
        let now = self.clock.now()
        let record = sad.record
        let credential = entry.credential
        guard record.holderID == holderID, record.credentialID == credentialID, (record.clientID != nil) == credentialToken, record.expiresAt > now,
              mechanism.hash == record.hashAlgorithm,
              hashes.allSatisfy(sad.hashes.contains),
              credential.holderID == holderID, credential.status == .active, now >= credential.notBefore, now < credential.notAfter,
              mechanism.isRSA == credential.keyAlgorithm.isRSA else { return nil }
        if let tokenHash {
            guard let token = self.cache.token(tokenHash), token.holderID == holderID, token.expiresAt > now else { return nil }
        }
        let spending = SADSpending(
            idHash: idHash, holderID: holderID, credentialID: credentialID, count: hashes.count, now: now, credentialVersion: entry.version,
            accessTokenHash: tokenHash, audit: Self.signed(holderID: holderID, credentialID: credentialID, count: hashes.count))
        guard try await self.store.spendSAD(spending) else {
            // Spent, expired, deleted, or the credential or token changed: the slow way reads them again.
            self.cache.forget(sad: idHash)
            self.cache.forget(credential: credentialID)
            return nil
        }
        return credential
    }

    /// The bearer token, read from the database (the request's token was taken from the cache).
    private func checkToken(_ tokenHash: [UInt8]) async throws {
        guard let entry = try await self.store.accessToken(tokenHash: tokenHash) else {
            self.cache.forget(token: tokenHash)
            throw SigilloError(.invalidToken, "the access token is not valid")
        }
        guard entry.expiresAt > self.clock.now() else { throw SigilloError(.expiredToken, "the access token has expired") }
        self.cache.remember(token: tokenHash, HotPathCache.Token(holderID: entry.holderID, expiresAt: entry.expiresAt))
    }

    /// Every check before the token on fresh reads: the SAD is this holder's for this credential, unexpired, for these
    /// digests and this hash algorithm; the credential usable with this mechanism; then `hashes.count` signatures
    /// spent atomically (with the audit event). What was read goes to the cache.
    ///
    /// - Throws: a `SigilloError` saying what was refused (its message goes to the audit record; no secret in it).
    private func spend(holderID: String, credentialID: String, idHash: [UInt8], tokenHash: [UInt8]?, hashes: [[UInt8]],
                       mechanism: SignatureMechanism, credentialToken: Bool) async throws -> Credential {
        let now = self.clock.now()
        guard let record = try await self.store.sad(idHash: idHash), record.holderID == holderID, record.credentialID == credentialID else {
            throw SigilloError(.invalidSAD, "the SAD is not valid for this credential")
        }
        guard record.expiresAt > now else {
            throw SigilloError(.expiredSAD, "the SAD has expired")
        }
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
        let (credential, version) = try await self.credentials.usableVersioned(credentialID, holderID: holderID)
        guard mechanism.isRSA == credential.keyAlgorithm.isRSA else {
            throw SigilloError(.invalidRequest, "the signature algorithm does not match the credential's \(credential.keyAlgorithm.rawValue) key")
        }
        let spending = SADSpending(
            idHash: idHash, holderID: holderID, credentialID: credentialID, count: hashes.count, now: self.clock.now(), credentialVersion: version,
            accessTokenHash: tokenHash, audit: Self.signed(holderID: holderID, credentialID: credentialID, count: hashes.count))
        guard try await self.store.spendSAD(spending) else {
            throw SigilloError(.invalidSAD, "the SAD has no signatures left or has expired")
        }
        self.cache.remember(record)
        self.cache.remember(credential, version: version)
        return credential
    }

    /// The audit event of an accepted request: one per request, however many hashes.
    private static func signed(holderID: String, credentialID: String, count: Int) -> AuditEvent {
        AuditEvent(actor: holderID, action: "signature.sign", target: credentialID, outcome: "ok", details: "signatures=\(count)")
    }
}
