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
    let authentication: Authentication
    let credentials: CredentialAccess
    let otp: OTPVerifier
    let sms: SMSSender
    let audit: AuditLog
    let clock: ServiceClock
    let settings: DomainSettings

    /// Refusals already audited, with their count, by the password and OTP checks.
    private static let auditedByCheck: Set<SigilloError.Code> = [.invalidPassword, .pinLocked, .invalidOTP, .otpReplayed, .otpLocked]

    /// Authorizes `numSignatures` signatures of exactly `hashes` with the credential, after checking the
    /// holder's password and OTP (CSC SCAL2 `credentials/authorize`), each under its lock. Every refusal is audited.
    public func authorize(holderID: String, credentialID: String, numSignatures: Int, hashes: [[UInt8]], hashAlgorithm: HashAlgorithm, password: String, otp: String) async throws -> SignatureAuthorization {
        do {
            return try await self.grant(holderID: holderID, credentialID: credentialID, numSignatures: numSignatures, hashes: hashes,
                                        hashAlgorithm: hashAlgorithm, password: password, otp: otp)
        } catch let error as SigilloError where !Self.auditedByCheck.contains(error.code) {
            try await self.audit.record(holderID, "credential.authorize", target: credentialID, outcome: "refused", details: error.code.rawValue)
            throw error
        }
    }

    private func grant(holderID: String, credentialID: String, numSignatures: Int, hashes: [[UInt8]], hashAlgorithm: HashAlgorithm, password: String, otp: String) async throws -> SignatureAuthorization {
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
        guard let holder = try await self.store.holder(id: holderID), let stored = holder.passwordHash else {
            throw SigilloError(.notFound, "unknown credential")
        }
        // The caller holds the holder's bearer token: a lock may be named here ("PIN locked", "OTP locked").
        try await self.authentication.verifyPassword(password, of: holder, stored: stored, action: "credential.authorize", target: credentialID)
        try await self.otp.verify(otp, holder: holder, purpose: .signature, action: "credential.authorize", target: credentialID)

        let sad = Secrets.token()
        let now = self.clock.now()
        let expiresAt = now.addingTimeInterval(min(self.settings.sadLifetime, self.settings.sadMaxLifetime))
        try await self.store.insertSAD(SADRecord(
            idHash: Secrets.digest(sad), holderID: holderID, credentialID: credentialID, hashAlgorithm: hashAlgorithm, hashes: hashes,
            numSignatures: numSignatures, used: 0, expiresAt: expiresAt, authorizedAt: now))
        try await self.audit.record(holderID, "credential.authorize", target: credentialID, outcome: "ok", details: "signatures=\(numSignatures) hashes=\(hashes.count)")
        return SignatureAuthorization(sad: sad, expiresIn: Int(expiresAt.timeIntervalSince(now)))
    }

    /// Sends an SMS code for signing to a holder whose device is SMS (CSC `credentials/sendOTP`).
    public func sendOTP(holderID: String, credentialID: String) async throws {
        _ = try await self.credentials.usable(credentialID, holderID: holderID)
        guard let device = try await self.store.activeOTPDevice(holderID: holderID), device.kind == .sms else {
            throw SigilloError(.invalidRequest, "this credential's OTP is not sent by SMS")
        }
        guard let holder = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "unknown credential") }
        try await self.sms.sendCode(to: holder, for: .signature)
    }

    /// Extends a SAD's life by another `sadLifetime` (CSC `credentials/extendTransaction`), never past
    /// `sadMaxLifetime` from its authorization. Each extension is audited.
    public func extendTransaction(holderID: String, credentialID: String, sad: String) async throws -> SignatureAuthorization {
        let now = self.clock.now()
        do {
            let record = try await self.store.validSAD(sad, holderID: holderID, credentialID: credentialID, now: now)
            // An OAuth2 credential token keeps the 5 minutes the holder approved: only a SAD of credentials/authorize is extended.
            guard record.clientID == nil else { throw SigilloError(.invalidSAD, "an OAuth2 access token is not a SAD") }
            let expiresAt = min(now.addingTimeInterval(self.settings.sadLifetime), record.authorizedAt.addingTimeInterval(self.settings.sadMaxLifetime))
            guard expiresAt > now, try await self.store.extendSAD(idHash: record.idHash, expiresAt: expiresAt, now: now) else {
                throw SigilloError(.expiredSAD, "the SAD has expired, is used up, or reached its longest life (\(Int(self.settings.sadMaxLifetime / 60)) minutes from authorization)")
            }
            let expiresIn = Int(expiresAt.timeIntervalSince(now))
            try await self.audit.record(holderID, "credential.extendTransaction", target: credentialID, outcome: "ok", details: "expires_in=\(expiresIn)")
            return SignatureAuthorization(sad: sad, expiresIn: expiresIn)
        } catch let error as SigilloError {
            try await self.audit.record(holderID, "credential.extendTransaction", target: credentialID, outcome: "refused", details: error.code.rawValue)
            throw error
        }
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
