import Foundation
import PKCS11

/// Everything the domain keeps. SQLite (`SQLiteStore`) is the embedded default; a PostgreSQL implementation
/// implements the same protocol with the same SQL shapes (plain tables, integer seconds, byte blobs, and
/// compare-and-set `UPDATE`s that hold across nodes).
///
/// Operations that must be atomic are single methods here (consuming a SAD, completing an activation,
/// advancing an OTP counter, counting a failure), so no caller can interleave half of one.
public protocol Store: Sendable {
    // Holders and activation.
    /// - Throws: `SigilloError.conflict` naming the field when email, mobile, fiscal code or username is taken.
    func createHolder(_ holder: Holder) async throws
    func holder(id: String) async throws -> Holder?
    func holder(username: String) async throws -> Holder?
    /// Every holder, oldest first.
    func holders() async throws -> [Holder]
    func setHolderState(id: String, state: HolderState) async throws
    /// - Throws: `notFound`; `conflict` when the number belongs to another holder.
    func setHolderMobile(id: String, mobile: String) async throws
    func createInvitation(_ invitation: Invitation) async throws
    func invitation(codeHash: [UInt8]) async throws -> Invitation?
    func setPendingDevice(codeHash: [UInt8], device: OTPDevice?) async throws
    /// Marks the invitation used and stores the holder's username, password hash, OTP device and credential,
    /// all or nothing. - Throws: `invitationUsed` if another activation got there first; `conflict` for a taken username.
    func completeActivation(codeHash: [UInt8], at time: Date, username: String, passwordHash: String, device: OTPDevice, credential: Credential) async throws
    /// Stores the Argon2id hash of the holder's user (emergency) code, shown to them once.
    func setUserCodeHash(holderID: String, hash: String) async throws
    /// The stored user code hash and the consecutive wrong attempts.
    func userCode(holderID: String) async throws -> (hash: String, failures: Int)?
    /// Counts a wrong user code (returns the new count), or clears the count after a right one.
    func recordUserCodeAttempt(holderID: String, success: Bool) async throws -> Int

    // Credentials.
    func credential(id: String) async throws -> Credential?
    func credentials(holderID: String) async throws -> [Credential]
    func setCredentialStatus(id: String, status: CredentialStatus) async throws
    /// Moves a credential from `from` to `to` at `time` (kept as the suspension time when `to` is suspended) and
    /// deletes its SADs, all or nothing; false if it was not in `from`.
    func changeCredentialStatus(id: String, from: CredentialStatus, to: CredentialStatus, at time: Date) async throws -> Bool
    /// The credential whose certificate has `serialNumber` (upper-case hex, as stored), if any.
    func credential(serialNumber: String) async throws -> Credential?
    /// Every suspended or revoked credential (what the CRL lists), by serial number.
    func unusableCredentials() async throws -> [Credential]
    /// Hands out the next CRL number (1, 2, 3…), never the same twice, even across nodes and restarts.
    func nextCRLNumber() async throws -> Int64
    /// Marks a credential revoked (irreversible) with its reason and time and deletes its SADs, all or nothing;
    /// false if it was already revoked. - Throws: `notFound` for an unknown credential.
    func revokeCredential(id: String, reason: RevocationReason, at time: Date) async throws -> Bool
    /// Counts one failure and returns the new count (the credential is locked at `Lockout.limit`).
    func recordFailure(credentialID: String, kind: FailureKind) async throws -> Int
    /// Clears both failure counters (successful authentication, or an operator's unlock).
    func resetFailures(credentialID: String) async throws

    // OTP devices.
    func activeOTPDevice(holderID: String) async throws -> OTPDevice?
    /// Records TOTP step `step` as used if it is newer than the last one; false means replay.
    func advanceTOTP(deviceID: String, to step: UInt64) async throws -> Bool
    /// Moves the HOTP counter from `expected` to `next`; false if another request moved it first.
    func advanceHOTP(deviceID: String, from expected: UInt64, to next: UInt64) async throws -> Bool
    func storeSMSCode(holderID: String, codeHash: [UInt8], expiresAt: Date) async throws
    /// Consumes an unexpired, unused SMS code; false if there is none matching.
    func consumeSMSCode(holderID: String, codeHash: [UInt8], now: Date) async throws -> Bool

    // SADs.
    func insertSAD(_ sad: SADRecord) async throws
    func sad(idHash: [UInt8]) async throws -> SADRecord?
    /// Spends `count` signatures of the SAD if it is unexpired and has that many left; false otherwise.
    func consumeSAD(idHash: [UInt8], count: Int, now: Date) async throws -> Bool
    /// Gives back `count` signatures that were spent but not made (the token failed).
    func refundSAD(idHash: [UInt8], count: Int) async throws
    /// Extends an unexpired SAD's life; false if it already expired.
    func extendSAD(idHash: [UInt8], expiresAt: Date, now: Date) async throws -> Bool
    /// Deletes every SAD of a credential (suspension, revocation, password reset).
    func deleteSADs(credentialID: String) async throws

    // Access tokens (CSC auth/login), stored as digests.
    func createAccessToken(tokenHash: [UInt8], holderID: String, expiresAt: Date) async throws
    /// The holder of an unrevoked token and when it expires; nil if unknown or revoked.
    func accessToken(tokenHash: [UInt8]) async throws -> (holderID: String, expiresAt: Date)?
    func revokeAccessToken(tokenHash: [UInt8]) async throws
    /// Ends every session of a holder (password reset, suspension).
    func revokeAccessTokens(holderID: String) async throws

    // Outgoing messages (SMS, mail) waiting for a gateway.
    func enqueueMessage(_ message: OutgoingMessage) async throws
    func pendingMessages() async throws -> [OutgoingMessage]

    // Lifecycle: enrolment states, recovery, renewal.
    /// Moves a holder to `to` if it is in one of `from` (compare-and-set); false otherwise.
    func transitionHolder(id: String, from: Set<HolderState>, to: HolderState) async throws -> Bool
    func holder(email: String) async throws -> Holder?
    func holder(mobile: String) async throws -> Holder?
    /// Stores the SHA-256 of a single-use password-reset token.
    func createPasswordReset(tokenHash: [UInt8], holderID: String, createdAt: Date, expiresAt: Date) async throws
    /// Counts `count` events under `key` and returns true when, with them, no more than `limit` were counted in the
    /// `window` before `now`; returns false (and counts nothing) otherwise. Atomic: concurrent callers cannot all slip
    /// under the limit.
    func admit(throttle key: String, now: Date, window: TimeInterval, limit: Int, count: Int) async throws -> Bool
    /// A change of mobile number waiting for the code sent to the new number (one per holder: a new one replaces it).
    func storeMobileChange(holderID: String, mobile: String, codeHash: [UInt8], expiresAt: Date) async throws
    /// Applies the waiting change whose code matches and has not expired, once; returns the new number, or nil.
    /// - Throws: `conflict` when another holder has registered that number meanwhile.
    func completeMobileChange(holderID: String, codeHash: [UInt8], now: Date) async throws -> String?
    /// The holder, expiry and use time of a reset token.
    func passwordReset(tokenHash: [UInt8]) async throws -> (holderID: String, expiresAt: Date, usedAt: Date?)?
    /// Spends an unused, unexpired reset token and sets the new password hash; ends the holder's sessions (access
    /// tokens), deletes their SADs and clears password failures, all or nothing. Nil if the token was not usable.
    func completePasswordReset(tokenHash: [UInt8], passwordHash: String, now: Date) async throws -> String?
    /// A new OTP device waiting to be proven (lost or broken device), keyed by the SHA-256 of a single-use token.
    func createDeviceRebind(tokenHash: [UInt8], device: OTPDevice, createdAt: Date, expiresAt: Date) async throws
    func deviceRebind(tokenHash: [UInt8]) async throws -> (device: OTPDevice, expiresAt: Date, usedAt: Date?)?
    /// Spends the rebind token, switches the holder's old devices off and stores `device` (proven) as the active
    /// one, and deletes the holder's SADs, all or nothing. False if the token was used or expired.
    func completeDeviceRebind(tokenHash: [UInt8], device: OTPDevice, now: Date) async throws -> Bool
    /// Adds hardware tokens from a manufacturer's seed file; serials already known are left as they are. Returns how many were added.
    func importHardwareTokens(_ tokens: [HardwareToken], at time: Date) async throws -> Int
    func hardwareToken(serial: String) async throws -> HardwareToken?
    /// Active or suspended credentials whose certificate ends before `date`, soonest first.
    func credentialsExpiring(before date: Date) async throws -> [Credential]
    func setLastReminder(credentialID: String, days: Int) async throws
    /// Stores a renewed credential (new key, new certificate) for a holder whose credential `replacing` is active,
    /// and makes the holder active again, all or nothing. False if `replacing` is no longer active.
    func addRenewedCredential(_ credential: Credential, replacing: String) async throws -> Bool
    // Mail outbox (migration v7): written first, delivered by `MailDispatcher`, never lost or sent twice by two dispatchers.
    /// Stores a new pending mail, due at `mail.nextAttemptAt`.
    func enqueueMail(_ mail: QueuedMail) async throws
    /// Atomically claims up to `limit` due mails for `owner` until `leaseUntil` and counts an attempt on each: pending
    /// mails whose next attempt is at or before `now`, and mails whose claim ran out (a dispatcher that died mid-send),
    /// earliest due first. Two dispatchers, in one process or on two nodes, never hold the same mail.
    func claimDueMails(now: Date, owner: String, leaseUntil: Date, limit: Int) async throws -> [QueuedMail]
    /// Marks a claimed mail sent; false if `owner` no longer holds the claim.
    func markMailSent(id: String, owner: String, at time: Date) async throws -> Bool
    /// Gives a claimed mail back as pending, due again at `nextAttempt`, with the error; false if the claim was lost.
    func markMailRetry(id: String, owner: String, nextAttempt: Date, error: String) async throws -> Bool
    /// Marks a claimed mail failed for good with the error; false if the claim was lost.
    func markMailFailed(id: String, owner: String, at time: Date, error: String) async throws -> Bool
    /// The earliest time a mail falls due (a pending mail's next attempt, or a claim running out); nil when none waits.
    func nextMailDue() async throws -> Date?
    /// Every mail, oldest (then first queued) first (tests and administration).
    func mails() async throws -> [QueuedMail]

    // Audit.
    /// Appends an event to the hash chain.
    func audit(_ event: AuditEvent, at time: Date) async throws
    func auditRecords() async throws -> [AuditRecord]
    /// The highest sequence number ever handed out to an audit event (SQLite's `sqlite_sequence`), even if that
    /// row is gone: a chain that ends below it lost its last rows. Nil when no event was ever written.
    func auditSequenceHighWater() async throws -> Int64?
}
