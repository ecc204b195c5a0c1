import Foundation
import PKCS11

/// A completed activation: the credential, and the user (emergency) code to show the holder once.
public struct ActivatedHolder: Sendable {
    public var credential: Credential
    /// Lets the holder suspend or revoke their credential when the device is lost. Not recoverable.
    public var userCode: String
}

/// From order to active holder: operators create holders, move them through the enrolment steps and invite them;
/// the holder activates (password, OTP device proven with a first code, key pair generated in the token,
/// certificate issued, user code shown once). Email, mobile number and fiscal code belong to one person only.
public struct Enrollment: Sendable {
    let store: any HolderStore & EnrollmentStore
    let devices: OTPDevices
    let keys: HolderKeys
    let ca: any CertificateIssuer
    let passwords: PasswordHasher
    let blocking: BlockingExecutor
    let mail: HolderMail
    let audit: AuditLog
    let clock: ServiceClock
    let settings: DomainSettings

    /// Creates a holder: a new order (`created`), or `recognized` at once when the operator identified the person
    /// at the desk (registration office). Email, mobile number and fiscal code belong to one person only.
    ///
    /// - Throws: `invalidRequest` for malformed fields, `conflict` when email, mobile or fiscal code is taken.
    public func createHolder(givenName: String, surname: String, fiscalCode: String, email: String, mobile: String, actor: String, recognized: Bool = false) async throws -> Holder {
        let identity = try HolderIdentity(givenName: givenName, surname: surname, fiscalCode: fiscalCode.uppercased(), email: email).validated()
        let normalizedEmail = email.trimmingCharacters(in: .whitespaces).lowercased()
        guard Self.isPlausibleEmail(normalizedEmail) else { throw SigilloError(.invalidRequest, "email '\(email)' is not a valid address") }
        let normalizedMobile = try Self.normalizedMobile(mobile)
        let holder = Holder(
            id: "h-" + UUID().uuidString.lowercased(), givenName: identity.givenName, surname: identity.surname, fiscalCode: identity.fiscalCode,
            email: normalizedEmail, mobile: normalizedMobile, state: recognized ? .recognized : .created, createdAt: self.clock.now())
        do {
            try await self.store.createHolder(holder)
        } catch let error as SigilloError {
            try await self.audit.record(actor, "holder.create", target: holder.fiscalCode, outcome: "refused", details: error.message)
            throw error
        }
        try await self.audit.record(actor, "holder.create", target: holder.id, outcome: "ok", details: "state=\(holder.state.rawValue)")
        return holder
    }

    /// Issues an activation invitation, valid `settings.invitationValidity`, and returns its code (shown once).
    /// Every earlier unused invitation of the holder stops working (its code reads as unknown).
    public func invite(holderID: String, actor: String) async throws -> (code: String, expiresAt: Date) {
        guard let holder = try await self.store.holder(id: holderID) else {
            try await self.audit.record(actor, "holder.invite", target: holderID, outcome: "refused", details: "unknown holder")
            throw SigilloError(.notFound, "no holder \(holderID)")
        }
        guard holder.state.canMove(to: .invited) else {
            try await self.audit.record(actor, "holder.invite", target: holderID, outcome: "refused", details: "state=\(holder.state.rawValue)")
            throw SigilloError(.illegalTransition, "holder \(holderID) is \(holder.state.rawValue); only a recognized holder (or one already invited) is invited")
        }
        let code = Base32.encode(Secrets.randomBytes(20), padding: false)
        let now = self.clock.now()
        let expiresAt = now.addingTimeInterval(self.settings.invitationValidity)
        guard try await self.store.transitionHolder(id: holderID, from: [.recognized, .invited], to: .invited) else {
            try await self.audit.record(actor, "holder.invite", target: holderID, outcome: "refused", details: "state changed meanwhile")
            throw SigilloError(.illegalTransition, "holder \(holderID) changed state meanwhile; try again")
        }
        // A new invitation voids every earlier unused one: only the code just mailed activates.
        let voided = try await self.store.createInvitation(Invitation(codeHash: Secrets.digest(code), holderID: holderID, createdAt: now, expiresAt: expiresAt))
        try await self.audit.record(actor, "holder.invite", target: holderID, outcome: "ok", details: "from=\(holder.state.rawValue) to=invited voided=\(voided)")
        try await self.mail.send(to: holder, MailTemplates.invitation(name: holder.fullName, activationURL: self.mail.link("/activate", code: code), expiresAt: expiresAt))
        return (code, expiresAt)
    }

    /// Moves a holder one step along the enrolment: order created → payment registered → awaiting processing →
    /// awaiting documents → recognized. Invitation, activation, expiry, suspension and revocation have their own
    /// commands, so they are refused here. Every attempt is audited.
    ///
    /// - Throws: `illegalTransition` for a move the enrolment does not allow, `notFound` for an unknown holder.
    public func advanceEnrolment(holderID: String, to next: HolderState, actor: String) async throws -> Holder {
        guard let holder = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "no holder \(holderID)") }
        let operatorSteps: Set<HolderState> = [.paymentRegistered, .awaitingProcessing, .awaitingDocuments, .recognized]
        guard operatorSteps.contains(next) else {
            try await self.audit.record(actor, "holder.transition", target: holderID, outcome: "refused", details: "from=\(holder.state.rawValue) to=\(next.rawValue)")
            throw SigilloError(.illegalTransition, "'\(next.rawValue)' is not an enrolment step; use invite, suspend, reinstate or revoke")
        }
        guard holder.state.canMove(to: next), try await self.store.transitionHolder(id: holderID, from: [holder.state], to: next) else {
            try await self.audit.record(actor, "holder.transition", target: holderID, outcome: "refused", details: "from=\(holder.state.rawValue) to=\(next.rawValue)")
            let legal = holder.state.allowed.filter(operatorSteps.contains).map(\.rawValue).sorted()
            throw SigilloError(.illegalTransition, "a holder \(holder.state.rawValue) cannot become \(next.rawValue)"
                + (legal.isEmpty ? "" : "; next: \(legal.joined(separator: ", "))"))
        }
        try await self.audit.record(actor, "holder.transition", target: holderID, outcome: "ok", details: "from=\(holder.state.rawValue) to=\(next.rawValue)")
        guard let moved = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "no holder \(holderID)") }
        return moved
    }

    /// The holder an invitation code is for, and until when it is valid (the activation page's greeting).
    ///
    /// - Throws: `notFound`, `invitationUsed`, `invitationExpired` (older than 12 months: a new order is needed).
    public func invitationHolder(code: String) async throws -> (holder: Holder, expiresAt: Date) {
        let (invitation, holder) = try await self.openInvitation(code)
        return (holder, invitation.expiresAt)
    }

    /// Starts an activation: checks the invitation and prepares the OTP device the holder will prove.
    public func beginActivation(invitationCode: String, device: DeviceChoice) async throws -> ActivationChallenge {
        let (invitation, holder) = try await self.openInvitation(invitationCode)
        let (pending, challenge) = try await self.devices.prepare(device, for: holder)
        try await self.store.setPendingDevice(codeHash: invitation.codeHash, device: pending)
        try await self.audit.record(holder.id, "activation.begin", target: holder.id, outcome: "ok", details: "device=\(pending.kind.rawValue)")
        return challenge
    }

    /// Completes an activation: password set, OTP device proven with one valid code, key pair generated in the
    /// token, certificate issued. All or nothing: a failure leaves no key, no credential and a usable invitation.
    public func completeActivation(invitationCode: String, username: String, password: String, otp: String, keyAlgorithm: KeyAlgorithm = .ecP256) async throws -> Credential {
        try await self.activate(invitationCode: invitationCode, username: username, password: password, otp: otp, keyAlgorithm: keyAlgorithm).credential
    }

    /// `completeActivation`, also returning the user code (stored only as an Argon2id hash).
    public func activate(invitationCode: String, username: String, password: String, otp: String, keyAlgorithm: KeyAlgorithm = .ecP256) async throws -> ActivatedHolder {
        let (invitation, holder) = try await self.openInvitation(invitationCode)
        guard var device = invitation.pendingDevice else {
            throw SigilloError(.invalidRequest, "choose an OTP device first (begin the activation)")
        }
        let username = username.trimmingCharacters(in: .whitespaces).lowercased()
        guard (3...64).contains(username.count), username.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-@".contains($0)) }) else {
            throw SigilloError(.invalidRequest, "a username has 3 to 64 letters, digits, '.', '_', '-' or '@'")
        }
        try PasswordPolicy.validate(password: password, username: username)
        if try await self.store.holder(username: username) != nil {
            throw SigilloError(.conflict, "username already belongs to another record")
        }
        let now = self.clock.now()
        device.id = "otp-" + UUID().uuidString.lowercased()
        guard let proven = try await self.devices.prove(device, otp: otp, holder: holder, now: now) else {
            try await self.audit.record(holder.id, "activation.complete", target: holder.id, outcome: "refused", details: "invalid otp")
            throw SigilloError(.invalidOTP, "the one-time password is not valid")
        }
        device = proven
        let passwords = self.passwords
        let passwordHash = try await self.blocking.run { try passwords.hash(password) }

        let credentialID = "c-" + UUID().uuidString.lowercased()
        let key = try await self.keys.generate(id: credentialID, algorithm: keyAlgorithm)
        do {
            let credential = try await self.ca.credential(
                id: credentialID, key: key, algorithm: keyAlgorithm, multisign: self.settings.defaultMultisign, for: holder, at: now, settings: self.settings)
            try await self.store.completeActivation(codeHash: invitation.codeHash, at: now, username: username, passwordHash: passwordHash, device: device, credential: credential)
            let userCode = Self.newUserCode()
            let userCodeHash = try await self.blocking.run { try passwords.hash(userCode) }
            try await self.store.setUserCodeHash(holderID: holder.id, hash: userCodeHash)
            try await self.audit.record(holder.id, "activation.complete", target: credentialID, outcome: "ok", details: "username=\(username) key=\(keyAlgorithm.rawValue) serial=\(credential.serialNumber)")
            return ActivatedHolder(credential: credential, userCode: userCode)
        } catch {
            // Nothing half-done: the key goes away with the failed activation.
            await self.keys.discard(key, id: credentialID)
            try? await self.audit.record(holder.id, "activation.complete", target: holder.id, outcome: "failed", details: "\(error)")
            throw error
        }
    }

    private func openInvitation(_ code: String) async throws -> (Invitation, Holder) {
        let normalized = code.uppercased().filter { !$0.isWhitespace && $0 != "-" }
        guard let invitation = try await self.store.invitation(codeHash: Secrets.digest(normalized)) else {
            throw SigilloError(.notFound, "unknown activation code")
        }
        guard invitation.usedAt == nil else { throw SigilloError(.invitationUsed, "this invitation was already used") }
        guard invitation.expiresAt > self.clock.now() else {
            throw SigilloError(.invitationExpired, "this invitation expired on \(invitation.expiresAt); a new order is needed")
        }
        guard let holder = try await self.store.holder(id: invitation.holderID) else { throw SigilloError(.notFound, "unknown activation code") }
        guard holder.state == .invited else {
            throw SigilloError(.invitationUsed, "this invitation no longer applies: the holder is \(holder.state.label)")
        }
        return (invitation, holder)
    }

    /// 16 base32 characters (80 bits) in groups of four: XXXX-XXXX-XXXX-XXXX.
    private static func newUserCode() -> String {
        let text = Base32.encode(Secrets.randomBytes(10), padding: false)
        return stride(from: 0, to: 16, by: 4).map { String(Array(text)[$0..<$0 + 4]) }.joined(separator: "-")
    }

    /// A mobile number in E.164 form without spaces. - Throws: `invalidRequest` otherwise.
    public static func normalizedMobile(_ mobile: String) throws -> String {
        let normalized = mobile.filter { !$0.isWhitespace }
        guard normalized.hasPrefix("+"), normalized.count >= 8, normalized.count <= 16, normalized.dropFirst().allSatisfy(\.isNumber) else {
            throw SigilloError(.invalidRequest, "mobile '\(mobile)' must be in international form, e.g. +393331234567")
        }
        return normalized
    }

    private static func isPlausibleEmail(_ email: String) -> Bool {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !parts[1].hasPrefix(".") && !parts[1].hasSuffix(".")
            && email.count <= 254 && !email.contains(where: \.isWhitespace)
    }
}
