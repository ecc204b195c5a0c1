import Foundation
import PKCS11

/// A granted authorization: the SAD (given to the client once, stored only as a digest) and its lifetime.
public struct SignatureAuthorization: Sendable {
    public var sad: String
    public var expiresIn: Int
}

/// Two-factor authorization of exact hashes (CSC SCAL2): password and OTP give a SAD bound to the holder, the
/// credential, the digests and a number of signatures; and what the holder's credentials look like to a CSC client.
public struct Authorization: Sendable {
    let store: any HolderStore & CredentialStore & OTPStore & SADStore
    let credentials: CredentialAccess
    let otp: OTPVerifier
    let failures: FailureCounter
    let sms: SMSSender
    let passwords: PasswordHasher
    let blocking: BlockingExecutor
    let audit: AuditLog
    let clock: ServiceClock
    let settings: DomainSettings

    /// Authorizes `numSignatures` signatures of exactly `hashes` with the credential, after checking the
    /// holder's password and OTP (CSC SCAL2 `credentials/authorize`).
    public func authorize(holderID: String, credentialID: String, numSignatures: Int, hashes: [[UInt8]], hashAlgorithm: HashAlgorithm, password: String, otp: String) async throws -> SignatureAuthorization {
        let credential = try await self.credentials.usable(credentialID, holderID: holderID)
        guard numSignatures >= 1 else { throw SigilloError(.invalidRequest, "numSignatures must be at least 1") }
        guard numSignatures <= credential.multisign else {
            throw SigilloError(.tooManySignatures, "Numbers of signatures is too high (at most \(credential.multisign))")
        }
        guard !hashes.isEmpty else { throw SigilloError(.invalidRequest, "the hashes to sign are missing") }
        guard hashes.count <= numSignatures else { throw SigilloError(.invalidRequest, "more hashes (\(hashes.count)) than numSignatures (\(numSignatures))") }
        guard hashes.allSatisfy({ $0.count == hashAlgorithm.digestLength }) else {
            throw SigilloError(.invalidRequest, "every hash must be a \(hashAlgorithm.rawValue) digest of \(hashAlgorithm.digestLength) bytes")
        }
        if credential.pinLocked { throw SigilloError(.pinLocked, "PIN locked: too many wrong passwords") }
        if credential.otpLocked { throw SigilloError(.otpLocked, "OTP locked: too many wrong one-time passwords") }

        guard let holder = try await self.store.holder(id: holderID), let stored = holder.passwordHash else {
            throw SigilloError(.notFound, "unknown credential")
        }
        let passwords = self.passwords
        guard try await self.blocking.run({ passwords.verify(password, encoded: stored) }) else {
            try await self.failures.fail(credential, kind: .password, reason: "wrong password")
        }
        guard let device = try await self.store.activeOTPDevice(holderID: holderID) else {
            throw SigilloError(.invalidOTP, "no OTP device is bound to this holder")
        }
        try await self.otp.verify(otp, device: device, holder: holder, credential: credential)
        try await self.store.resetFailures(credentialID: credential.id)

        let sad = Secrets.token()
        let expiresAt = self.clock.now().addingTimeInterval(self.settings.sadLifetime)
        try await self.store.insertSAD(SADRecord(
            idHash: Secrets.digest(sad), holderID: holderID, credentialID: credentialID, hashAlgorithm: hashAlgorithm, hashes: hashes,
            numSignatures: numSignatures, used: 0, expiresAt: expiresAt))
        try await self.audit.record(holderID, "credential.authorize", target: credentialID, outcome: "ok", details: "signatures=\(numSignatures) hashes=\(hashes.count)")
        return SignatureAuthorization(sad: sad, expiresIn: Int(self.settings.sadLifetime))
    }

    /// Sends an SMS code for a holder whose device is SMS (CSC `credentials/sendOTP`).
    public func sendOTP(holderID: String, credentialID: String) async throws {
        _ = try await self.credentials.usable(credentialID, holderID: holderID)
        guard let device = try await self.store.activeOTPDevice(holderID: holderID), device.kind == .sms else {
            throw SigilloError(.invalidRequest, "this credential's OTP is not sent by SMS")
        }
        guard let holder = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "unknown credential") }
        try await self.sms.sendCode(to: holder)
    }

    /// Extends a SAD's life by another `sadLifetime` (CSC `credentials/extendTransaction`).
    public func extendTransaction(holderID: String, credentialID: String, sad: String) async throws -> SignatureAuthorization {
        let record = try await self.store.validSAD(sad, holderID: holderID, credentialID: credentialID, now: self.clock.now())
        let now = self.clock.now()
        guard try await self.store.extendSAD(idHash: record.idHash, expiresAt: now.addingTimeInterval(self.settings.sadLifetime), now: now) else {
            throw SigilloError(.expiredSAD, "the SAD has expired or is used up")
        }
        return SignatureAuthorization(sad: sad, expiresIn: Int(self.settings.sadLifetime))
    }

    /// The holder's credentials a client may use (every one not revoked), oldest first (CSC `credentials/list`).
    public func credentials(holderID: String) async throws -> [Credential] {
        try await self.store.credentials(holderID: holderID).filter { $0.status != .revoked }
    }

    /// One of the holder's credentials, whatever its status (CSC `credentials/info`). - Throws: `notFound`.
    public func credential(_ credentialID: String, holderID: String) async throws -> Credential {
        guard let credential = try await self.store.credential(id: credentialID), credential.holderID == holderID else {
            throw SigilloError(.notFound, "unknown credential")
        }
        return credential
    }

    /// The kind of the holder's bound OTP device, if any (CSC `OTP.type`).
    public func otpKind(holderID: String) async throws -> OTPKind? {
        try await self.store.activeOTPDevice(holderID: holderID)?.kind
    }
}
