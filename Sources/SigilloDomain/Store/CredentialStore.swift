import Foundation

/// Credentials: status, failure counters, expiry and renewal.
public protocol CredentialStore: Sendable {
    func credential(id: String) async throws -> Credential?
    /// The credential and its row's version, which changes with every update of the row (a cache of the credential
    /// is checked against it: `SADStore.spendSAD`).
    func versionedCredential(id: String) async throws -> (credential: Credential, version: Int64)?
    func credentials(holderID: String) async throws -> [Credential]
    func setCredentialStatus(id: String, status: CredentialStatus) async throws
    /// Moves a credential from `from` to `to` at `time` (kept as the suspension time when `to` is suspended) and
    /// deletes its SADs, all or nothing; false if it was not in `from`.
    func changeCredentialStatus(id: String, from: CredentialStatus, to: CredentialStatus, at time: Date) async throws -> Bool
    /// The credential whose certificate has `serialNumber` (upper-case hex, as stored), if any.
    func credential(serialNumber: String) async throws -> Credential?
    /// Every suspended or revoked credential (what the CRL lists), by serial number.
    func unusableCredentials() async throws -> [Credential]
    /// Marks a credential revoked (irreversible) with its reason and time and deletes its SADs, all or nothing;
    /// false if it was already revoked. - Throws: `notFound` for an unknown credential.
    func revokeCredential(id: String, reason: RevocationReason, at time: Date) async throws -> Bool
    /// Active or suspended credentials whose certificate ends before `date`, soonest first.
    func credentialsExpiring(before date: Date) async throws -> [Credential]
    func setLastReminder(credentialID: String, days: Int) async throws
    /// Stores a renewed credential (new key, new certificate) for a holder whose credential `replacing` is active and
    /// not yet replaced, and makes the holder active again, all or nothing. False if `replacing` is no longer active
    /// or another renewal replaced it first (two renewals racing: only one wins).
    func addRenewedCredential(_ credential: Credential, replacing: String) async throws -> Bool
}
