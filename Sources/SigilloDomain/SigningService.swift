import Foundation
import Logging
import PKCS11

/// The domain: holders, activation, two-factor authorization bound to exact hashes (SAD), and signing.
///
/// No signature is made unless the holder proved password and OTP for exactly the digests being signed,
/// within the SAD's lifetime and count, on an active credential with a valid certificate.
public final class SigningService: Sendable {
    public struct Settings: Sendable {
        public var publicBaseURL: String
        /// How long a SAD lives.
        public var sadLifetime: TimeInterval = 300
        /// How long an activation invitation is valid.
        public var invitationValidity: TimeInterval = 365 * 86_400
        public var smsCodeLifetime: TimeInterval = 300
        public var defaultMultisign = 100
        /// Issuer shown by authenticator apps.
        public var otpIssuer = "Sigillo"
        public var certificateValidityYears = 3

        public init(publicBaseURL: String) {
            self.publicBaseURL = publicBaseURL
        }
    }

    public let store: any Store
    public let signer: Signer
    public let ca: any CertificateIssuer
    public let settings: Settings
    /// The CA's current CRL.
    public let crl: any RevocationList
    let passwords: PasswordHasher
    let clock: ServiceClock
    let notifier: any Notifier
    /// Mail to holders (invitations, reminders, recovery links, notices).
    let mailer: any Mailer
    let blocking: BlockingExecutor
    let logger: Logger

    /// - Parameter mailer: where mails go; by default through `notifier` (channel `email`), as tests that read the
    ///   notifier want. The server passes the SMTP outbox (`OutboxMailer`).
    public init(store: any Store, signer: Signer, ca: any CertificateIssuer, crl: any RevocationList, settings: Settings, notifier: any Notifier, mailer: (any Mailer)? = nil, passwords: PasswordHasher = PasswordHasher(),
                clock: ServiceClock = .system, blocking: BlockingExecutor = BlockingExecutor(), logger: Logger = Logger(label: "sigillo.core")) {
        self.store = store
        self.signer = signer
        self.ca = ca
        self.settings = settings
        self.crl = crl
        self.notifier = notifier
        self.mailer = mailer ?? NotifierMailer(notifier: notifier, clock: clock)
        self.passwords = passwords
        self.clock = clock
        self.blocking = blocking
        self.logger = logger
    }

    // MARK: Operators: holders and invitations

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
            try await self.audit(actor, "holder.create", target: holder.fiscalCode, outcome: "refused", details: error.message)
            throw error
        }
        try await self.audit(actor, "holder.create", target: holder.id, outcome: "ok", details: "state=\(holder.state.rawValue)")
        return holder
    }

    /// Issues an activation invitation, valid `settings.invitationValidity`, and returns its code (shown once).
    public func invite(holderID: String, actor: String) async throws -> (code: String, expiresAt: Date) {
        guard let holder = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "no holder \(holderID)") }
        guard holder.state.canMove(to: .invited) else {
            try await self.audit(actor, "holder.invite", target: holderID, outcome: "refused", details: "state=\(holder.state.rawValue)")
            throw SigilloError(.illegalTransition, "holder \(holderID) is \(holder.state.rawValue); only a recognized holder (or one already invited) is invited")
        }
        let code = Base32.encode(Secrets.randomBytes(20), padding: false)
        let now = self.clock.now()
        let expiresAt = now.addingTimeInterval(self.settings.invitationValidity)
        guard try await self.store.transitionHolder(id: holderID, from: [.recognized, .invited], to: .invited) else {
            throw SigilloError(.illegalTransition, "holder \(holderID) changed state meanwhile; try again")
        }
        try await self.store.createInvitation(Invitation(codeHash: Secrets.digest(code), holderID: holderID, createdAt: now, expiresAt: expiresAt))
        try await self.audit(actor, "holder.invite", target: holderID, outcome: "ok", details: "from=\(holder.state.rawValue) to=invited")
        try await self.mail(to: holder, MailTemplates.invitation(name: holder.fullName, activationURL: self.link("/activate", code: code), expiresAt: expiresAt))
        return (code, expiresAt)
    }

    // MARK: Holders: activation

    /// The OTP device a holder binds at activation.
    public enum DeviceChoice: Sendable {
        /// A phone app: the server makes the secret and returns its `otpauth://` URI.
        case totp(algorithm: OTPAlgorithm = .sha1, digits: Int = 6)
        /// A hardware display token: its serial and seed, from the manufacturer's import file.
        case hotp(serial: String, secret: [UInt8], digits: Int = 6, algorithm: OTPAlgorithm = .sha1)
        /// A hardware display token from the inventory (`importHardwareTokens`): the holder gives only the serial.
        case hardware(serial: String)
        /// Codes by SMS to the registered mobile number.
        case sms
    }

    /// What the holder needs to prove the device: for TOTP the secret and its URI (for the QR code).
    public struct ActivationChallenge: Sendable {
        public var kind: OTPKind
        public var secret: [UInt8]?
        public var otpauthURI: String?
        /// Last digits of the mobile number the SMS went to.
        public var smsSentTo: String?
    }

    /// Starts an activation: checks the invitation and prepares the OTP device the holder will prove.
    public func beginActivation(invitationCode: String, device: DeviceChoice) async throws -> ActivationChallenge {
        let (invitation, holder) = try await self.openInvitation(invitationCode)
        let (pending, challenge) = try await self.prepareDevice(device, for: holder)
        try await self.store.setPendingDevice(codeHash: invitation.codeHash, device: pending)
        try await self.audit(holder.id, "activation.begin", target: holder.id, outcome: "ok", details: "device=\(pending.kind.rawValue)")
        return challenge
    }

    /// A device the holder will prove with a first code: for TOTP a new secret and its `otpauth://` URI, for a
    /// hardware token the imported seed, for SMS a code sent now.
    func prepareDevice(_ device: DeviceChoice, for holder: Holder) async throws -> (OTPDevice, ActivationChallenge) {
        var pending: OTPDevice
        var challenge: ActivationChallenge
        switch device {
        case .totp(let algorithm, let digits):
            try Self.checkDigits(digits)
            let secret = TOTP.generateSecret(bytes: algorithm.recommendedSecretLength)
            pending = OTPDevice(id: "pending", holderID: holder.id, kind: .totp, secret: secret, algorithm: algorithm, digits: digits)
            let uri = TOTP.otpauthURI(secret: secret, issuer: self.settings.otpIssuer, account: holder.email, digits: digits, algorithm: algorithm)
            challenge = ActivationChallenge(kind: .totp, secret: secret, otpauthURI: uri)
        case .hotp(let serial, let secret, let digits, let algorithm):
            try Self.checkDigits(digits)
            guard secret.count >= 16 else { throw SigilloError(.invalidRequest, "a hardware token seed has at least 16 bytes") }
            guard !serial.isEmpty, serial.count <= 64 else { throw SigilloError(.invalidRequest, "the hardware token serial is missing") }
            pending = OTPDevice(id: "pending", holderID: holder.id, kind: .hotp, secret: secret, algorithm: algorithm, digits: digits, serial: serial)
            challenge = ActivationChallenge(kind: .hotp)
        case .hardware(let serial):
            let serial = serial.trimmingCharacters(in: .whitespaces)
            guard !serial.isEmpty, serial.count <= 64, let token = try await self.store.hardwareToken(serial: serial) else {
                throw SigilloError(.invalidRequest, "unknown hardware token serial; check the number on the back of the token")
            }
            pending = OTPDevice(id: "pending", holderID: holder.id, kind: .hotp, secret: token.seed, algorithm: token.algorithm, digits: token.digits, serial: serial)
            challenge = ActivationChallenge(kind: .hotp)
        case .sms:
            pending = OTPDevice(id: "pending", holderID: holder.id, kind: .sms, secret: [])
            try await self.sendSMSCode(to: holder)
            challenge = ActivationChallenge(kind: .sms, smsSentTo: String(holder.mobile.suffix(3)))
        }
        return (pending, challenge)
    }

    /// Checks the first code of a device being bound; returns it with its counter or last step advanced, or nil.
    func proveNewDevice(_ device: OTPDevice, otp: String, holder: Holder, now: Date) async throws -> OTPDevice? {
        var device = device
        switch device.kind {
        case .totp:
            guard let step = TOTP.verify(code: otp, secret: device.secret, time: now, lastUsedStep: nil, digits: device.digits, algorithm: device.algorithm) else {
                return nil
            }
            device.lastStep = step
        case .hotp:
            guard let next = HOTP.verify(code: otp, secret: device.secret, counter: device.counter, digits: device.digits, algorithm: device.algorithm) else {
                return nil
            }
            device.counter = next
        case .sms:
            guard try await self.store.consumeSMSCode(holderID: holder.id, codeHash: Secrets.digest(otp), now: now) else { return nil }
        }
        return device
    }

    /// Completes an activation: password set, OTP device proven with one valid code, key pair generated in the
    /// token, certificate issued. All or nothing: a failure leaves no key, no credential and a usable invitation.
    public func completeActivation(invitationCode: String, username: String, password: String, otp: String, keyAlgorithm: KeyAlgorithm = .ecP256) async throws -> Credential {
        try await self.activate(invitationCode: invitationCode, username: username, password: password, otp: otp, keyAlgorithm: keyAlgorithm).credential
    }

    /// A completed activation: the credential, and the user (emergency) code to show the holder once.
    public struct Activated: Sendable {
        public var credential: Credential
        /// Lets the holder suspend or revoke their credential when the device is lost. Not recoverable.
        public var userCode: String
    }

    /// `completeActivation`, also returning the user code (stored only as an Argon2id hash).
    public func activate(invitationCode: String, username: String, password: String, otp: String, keyAlgorithm: KeyAlgorithm = .ecP256) async throws -> Activated {
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
        guard let proven = try await self.proveNewDevice(device, otp: otp, holder: holder, now: now) else {
            try await self.audit(holder.id, "activation.complete", target: holder.id, outcome: "refused", details: "invalid otp")
            throw SigilloError(.invalidOTP, "the one-time password is not valid")
        }
        device = proven
        let passwords = self.passwords
        let passwordHash = try await self.blocking.run { try passwords.hash(password) }

        let credentialID = "c-" + UUID().uuidString.lowercased()
        let spki = try await self.tokenCall { try await self.signer.token.generateKeyPair(id: credentialID, algorithm: keyAlgorithm) }
        do {
            let identity = HolderIdentity(givenName: holder.givenName, surname: holder.surname, fiscalCode: holder.fiscalCode, email: holder.email)
            let certificate = try await self.ca.issue(
                publicKeySPKI: spki, for: identity, notBefore: now, validityYears: self.settings.certificateValidityYears, publicBaseURL: self.settings.publicBaseURL)
            let credential = Credential(
                id: credentialID, holderID: holder.id, keyAlgorithm: keyAlgorithm, tokenKeyID: credentialID,
                certificateDER: certificate.der, serialNumber: certificate.serialNumber,
                notBefore: certificate.notBefore, notAfter: certificate.notAfter, status: .active, multisign: self.settings.defaultMultisign,
                passwordFailures: 0, otpFailures: 0)
            try await self.store.completeActivation(codeHash: invitation.codeHash, at: now, username: username, passwordHash: passwordHash, device: device, credential: credential)
            let userCode = Self.newUserCode()
            let userCodeHash = try await self.blocking.run { try passwords.hash(userCode) }
            try await self.store.setUserCodeHash(holderID: holder.id, hash: userCodeHash)
            try await self.audit(holder.id, "activation.complete", target: credentialID, outcome: "ok", details: "username=\(username) key=\(keyAlgorithm.rawValue) serial=\(credential.serialNumber)")
            return Activated(credential: credential, userCode: userCode)
        } catch {
            // Nothing half-done: the key goes away with the failed activation.
            _ = try? await self.signer.token.destroyKeyPair(id: credentialID)
            try? await self.audit(holder.id, "activation.complete", target: holder.id, outcome: "failed", details: "\(error)")
            throw error
        }
    }

    // MARK: Holders: authentication and authorization

    /// Checks username and password (CSC `auth/login`). Failures count towards the lockout of every credential.
    public func login(username: String, password: String) async throws -> Holder {
        let holder = try await self.checkPassword(username: username, password: password, action: "login")
        // Suspended and expired holders may still log in and see their credentials; signing checks each credential.
        guard holder.state != .revoked else {
            throw SigilloError(.credentialDisabled, "the account is \(holder.state.label)")
        }
        try await self.audit(holder.id, "login", target: holder.id, outcome: "ok")
        return holder
    }

    /// Logs in and issues a short-lived bearer token (CSC `auth/login`).
    public func issueAccessToken(username: String, password: String, lifetime: TimeInterval = 1800) async throws -> (token: String, holder: Holder, expiresIn: Int) {
        let holder = try await self.login(username: username, password: password)
        let token = Secrets.token()
        try await self.store.createAccessToken(tokenHash: Secrets.digest(token), holderID: holder.id, expiresAt: self.clock.now().addingTimeInterval(lifetime))
        return (token, holder, Int(lifetime))
    }

    /// The holder a bearer token belongs to.
    ///
    /// - Throws: `invalidToken` when unknown or revoked, `expiredToken` when expired.
    public func holderID(accessToken: String) async throws -> String {
        guard let entry = try await self.store.accessToken(tokenHash: Secrets.digest(accessToken)) else {
            throw SigilloError(.invalidToken, "the access token is not valid")
        }
        guard entry.expiresAt > self.clock.now() else { throw SigilloError(.expiredToken, "the access token has expired") }
        return entry.holderID
    }

    /// Revokes a bearer token (CSC `auth/revoke`).
    public func revokeAccessToken(_ token: String) async throws {
        try await self.store.revokeAccessToken(tokenHash: Secrets.digest(token))
    }

    /// A granted authorization: the SAD (given to the client once, stored only as a digest) and its lifetime.
    public struct Authorization: Sendable {
        public var sad: String
        public var expiresIn: Int
    }

    /// Authorizes `numSignatures` signatures of exactly `hashes` with the credential, after checking the
    /// holder's password and OTP (CSC SCAL2 `credentials/authorize`).
    public func authorize(holderID: String, credentialID: String, numSignatures: Int, hashes: [[UInt8]], hashAlgorithm: HashAlgorithm, password: String, otp: String) async throws -> Authorization {
        let credential = try await self.usableCredential(credentialID, holderID: holderID)
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
            try await self.fail(credential, kind: .password, reason: "wrong password")
        }
        guard let device = try await self.store.activeOTPDevice(holderID: holderID) else {
            throw SigilloError(.invalidOTP, "no OTP device is bound to this holder")
        }
        try await self.verifyOTP(otp, device: device, holder: holder, credential: credential)
        try await self.store.resetFailures(credentialID: credential.id)

        let sad = Secrets.token()
        let expiresAt = self.clock.now().addingTimeInterval(self.settings.sadLifetime)
        try await self.store.insertSAD(SADRecord(
            idHash: Secrets.digest(sad), holderID: holderID, credentialID: credentialID, hashAlgorithm: hashAlgorithm, hashes: hashes,
            numSignatures: numSignatures, used: 0, expiresAt: expiresAt))
        try await self.audit(holderID, "credential.authorize", target: credentialID, outcome: "ok", details: "signatures=\(numSignatures) hashes=\(hashes.count)")
        return Authorization(sad: sad, expiresIn: Int(self.settings.sadLifetime))
    }

    /// Sends an SMS code for a holder whose device is SMS (CSC `credentials/sendOTP`).
    public func sendOTP(holderID: String, credentialID: String) async throws {
        _ = try await self.usableCredential(credentialID, holderID: holderID)
        guard let device = try await self.store.activeOTPDevice(holderID: holderID), device.kind == .sms else {
            throw SigilloError(.invalidRequest, "this credential's OTP is not sent by SMS")
        }
        guard let holder = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "unknown credential") }
        try await self.sendSMSCode(to: holder)
    }

    /// Extends a SAD's life by another `sadLifetime` (CSC `credentials/extendTransaction`).
    public func extendTransaction(holderID: String, credentialID: String, sad: String) async throws -> Authorization {
        let record = try await self.validSAD(sad, holderID: holderID, credentialID: credentialID)
        let now = self.clock.now()
        guard try await self.store.extendSAD(idHash: record.idHash, expiresAt: now.addingTimeInterval(self.settings.sadLifetime), now: now) else {
            throw SigilloError(.expiredSAD, "the SAD has expired or is used up")
        }
        return Authorization(sad: sad, expiresIn: Int(self.settings.sadLifetime))
    }

    // MARK: Signing

    /// Signs `hashes` under a SAD (CSC `signatures/signHash`): every hash must be one the SAD authorized,
    /// the SAD must have that many signatures left, and the credential and its certificate must be valid now.
    ///
    /// - Returns: the signatures in input order.
    public func signHash(holderID: String, credentialID: String, sad: String, hashes: [[UInt8]], mechanism: SignatureMechanism) async throws -> [[UInt8]] {
        guard !hashes.isEmpty else { throw SigilloError(.invalidRequest, "the hashes to sign are missing") }
        let record = try await self.validSAD(sad, holderID: holderID, credentialID: credentialID)
        guard mechanism.hash == record.hashAlgorithm else {
            throw SigilloError(.invalidRequest, "the SAD was issued for \(record.hashAlgorithm.rawValue) digests")
        }
        let authorized = Set(record.hashes)
        guard hashes.allSatisfy(authorized.contains) else {
            try await self.audit(holderID, "signature.sign", target: credentialID, outcome: "refused", details: "hash not authorized")
            throw SigilloError(.invalidSAD, "a hash was not authorized by this SAD")
        }
        let credential = try await self.usableCredential(credentialID, holderID: holderID)
        guard mechanism.isRSA == credential.keyAlgorithm.isRSA else {
            throw SigilloError(.invalidRequest, "the signature algorithm does not match the credential's \(credential.keyAlgorithm.rawValue) key")
        }
        guard try await self.store.consumeSAD(idHash: record.idHash, count: hashes.count, now: self.clock.now()) else {
            try await self.audit(holderID, "signature.sign", target: credentialID, outcome: "refused", details: "SAD used up or expired")
            throw SigilloError(.invalidSAD, "the SAD has no signatures left or has expired")
        }
        do {
            let signatures = try await self.tokenCall {
                try await self.signer.sign(digests: hashes, credential: credential.tokenKeyID, mechanism: mechanism)
            }
            try await self.audit(holderID, "signature.sign", target: credentialID, outcome: "ok", details: "signatures=\(signatures.count)")
            return signatures
        } catch {
            try? await self.store.refundSAD(idHash: record.idHash, count: hashes.count)
            try? await self.audit(holderID, "signature.sign", target: credentialID, outcome: "failed", details: "\(error)")
            throw error
        }
    }

    /// The credential if it belongs to the holder, is active and its certificate is valid now.
    public func usableCredential(_ credentialID: String, holderID: String) async throws -> Credential {
        guard let credential = try await self.store.credential(id: credentialID), credential.holderID == holderID else {
            throw SigilloError(.notFound, "unknown credential")
        }
        switch credential.status {
        case .active: break
        case .suspended: throw SigilloError(.credentialDisabled, "the credential is suspended")
        case .revoked: throw SigilloError(.credentialDisabled, "the credential is revoked")
        }
        let now = self.clock.now()
        guard now >= credential.notBefore, now < credential.notAfter else {
            throw SigilloError(.certificateInvalid, "the certificate is not valid now (valid \(credential.notBefore) to \(credential.notAfter))")
        }
        return credential
    }

    // MARK: Helpers

    private func validSAD(_ sad: String, holderID: String, credentialID: String) async throws -> SADRecord {
        guard let record = try await self.store.sad(idHash: Secrets.digest(sad)), record.holderID == holderID, record.credentialID == credentialID else {
            throw SigilloError(.invalidSAD, "the SAD is not valid for this credential")
        }
        guard record.expiresAt > self.clock.now() else {
            throw SigilloError(.expiredSAD, "the SAD has expired")
        }
        return record
    }

    func openInvitation(_ code: String) async throws -> (Invitation, Holder) {
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

    func verifyOTP(_ otp: String, device: OTPDevice, holder: Holder, credential: Credential) async throws {
        let now = self.clock.now()
        switch device.kind {
        case .totp:
            switch TOTP.check(code: otp, secret: device.secret, time: now, lastUsedStep: device.lastStep == 0 ? nil : device.lastStep,
                              digits: device.digits, algorithm: device.algorithm, period: device.period) {
            case .accepted(let step):
                // Compare-and-set: two requests racing with the same code cannot both pass.
                guard try await self.store.advanceTOTP(deviceID: device.id, to: step) else {
                    try await self.fail(credential, kind: .otp, reason: "replayed otp", code: .otpReplayed)
                }
            case .replayed:
                try await self.fail(credential, kind: .otp, reason: "replayed otp", code: .otpReplayed)
            case .invalid:
                try await self.fail(credential, kind: .otp, reason: "wrong otp")
            }
        case .hotp:
            guard let next = HOTP.verify(code: otp, secret: device.secret, counter: device.counter, digits: device.digits, algorithm: device.algorithm) else {
                try await self.fail(credential, kind: .otp, reason: "wrong otp")
            }
            guard try await self.store.advanceHOTP(deviceID: device.id, from: device.counter, to: next) else {
                try await self.fail(credential, kind: .otp, reason: "replayed otp", code: .otpReplayed)
            }
        case .sms:
            guard try await self.store.consumeSMSCode(holderID: holder.id, codeHash: Secrets.digest(otp), now: now) else {
                try await self.fail(credential, kind: .otp, reason: "wrong or expired sms code")
            }
        }
    }

    /// Counts a failure, audits it, and throws the matching error (a lock at the limit).
    func fail(_ credential: Credential, kind: FailureKind, reason: String, code: SigilloError.Code? = nil) async throws -> Never {
        let failures = try await self.store.recordFailure(credentialID: credential.id, kind: kind)
        let locked = failures >= Lockout.limit
        try await self.audit(credential.holderID, "credential.authorize", target: credential.id, outcome: locked ? "locked" : "refused",
                             details: "\(reason) (\(failures)/\(Lockout.limit))")
        switch (kind, locked) {
        case (.password, true): throw SigilloError(.pinLocked, "PIN locked after \(Lockout.limit) wrong passwords")
        case (.otp, true): throw SigilloError(.otpLocked, "OTP locked after \(Lockout.limit) wrong one-time passwords")
        case (.password, false): throw SigilloError(.invalidPassword, "the password is not valid")
        case (.otp, false): throw SigilloError(code ?? .invalidOTP, code == .otpReplayed ? "this one-time password was already used" : "the one-time password is not valid")
        }
    }

    /// Counts `count` SMS for the holder against the limit: SMS cost money and reach a phone, so at most five codes
    /// in 15 minutes, whichever route asks (sendOTP, activation, reset link, mobile change).
    /// - Throws: `tooManyRequests` (nothing counted) when they would go over it.
    func admitSMS(to holder: Holder, count: Int = 1) async throws {
        guard try await self.store.admit(throttle: "sms/\(holder.id)", now: self.clock.now(), window: 900, limit: 5, count: count) else {
            try await self.audit(holder.id, "otp.sms.send", target: holder.id, outcome: "throttled")
            throw SigilloError(.tooManyRequests, "too many SMS codes were sent in the last 15 minutes; try again later")
        }
    }

    /// Sends a new SMS code to the holder's number, counted against the SMS limit, as the holder's pending SMS code.
    func sendSMSCode(to holder: Holder) async throws {
        try await self.admitSMS(to: holder)
        try await self.textCode(to: holder)
    }

    /// Sends a new SMS code, already counted against the limit, to the holder's number (or to `number`, a new one
    /// being proven) and stores its hash with `keep` (by default as the holder's pending SMS code).
    func textCode(to holder: Holder, number: String? = nil, keep: ((_ codeHash: [UInt8], _ expiresAt: Date) async throws -> Void)? = nil) async throws {
        let now = self.clock.now()
        let code = SMSCode.generate(digits: 6)
        let expiresAt = now.addingTimeInterval(self.settings.smsCodeLifetime)
        if let keep {
            try await keep(Secrets.digest(code), expiresAt)
        } else {
            try await self.store.storeSMSCode(holderID: holder.id, codeHash: Secrets.digest(code), expiresAt: expiresAt)
        }
        try await self.notifier.send(OutgoingMessage(channel: "sms", recipient: number ?? holder.mobile, body: "Sigillo: your code is \(code). It is valid for 5 minutes.", createdAt: now))
        try await self.audit(holder.id, "otp.sms.send", target: holder.id, outcome: "ok", details: number == nil ? "" : "to the new number")
    }

    /// Token failures become a clear `tokenUnavailable`; their CK_RV stays in the log.
    func tokenCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PKCS11Error {
            self.logger.error("token operation failed", metadata: ["error": "\(error)"])
            switch error.code {
            case .keyNotFound: throw SigilloError(.credentialDisabled, "the credential's key is not in the token")
            case .invalidDigestLength: throw SigilloError(.invalidRequest, error.detail)
            case .mechanismMismatch: throw SigilloError(.invalidRequest, "the signature algorithm does not match the key")
            default: throw SigilloError(.tokenUnavailable, "the signing device is not available; try again")
            }
        }
    }

    func audit(_ actor: String, _ action: String, target: String, outcome: String, details: String = "") async throws {
        try await self.store.audit(AuditEvent(actor: actor, action: action, target: target, outcome: outcome, details: details), at: self.clock.now())
    }

    /// 16 base32 characters (80 bits) in groups of four: XXXX-XXXX-XXXX-XXXX.
    static func newUserCode() -> String {
        let text = Base32.encode(Secrets.randomBytes(10), padding: false)
        return stride(from: 0, to: 16, by: 4).map { String(Array(text)[$0..<$0 + 4]) }.joined(separator: "-")
    }

    /// Checks a holder's user code; five wrong attempts in a row block it (only an operator can then act).
    ///
    /// - Throws: `invalidRequest` when wrong or blocked (same message, so it tells an attacker nothing).
    public func checkUserCode(username: String, userCode: String) async throws -> Holder {
        let refused = SigilloError(.invalidRequest, "the username or user code is not valid")
        guard let holder = try await self.store.holder(username: username.lowercased()),
              let stored = try await self.store.userCode(holderID: holder.id) else {
            throw refused
        }
        guard stored.failures < Lockout.limit else {
            try await self.audit(holder.id, "usercode.check", target: holder.id, outcome: "refused", details: "blocked")
            throw refused
        }
        let passwords = self.passwords
        let normalized = userCode.uppercased().filter { $0 != "-" && !$0.isWhitespace }
        let formatted = stride(from: 0, to: normalized.count, by: 4).map { String(Array(normalized)[$0..<min($0 + 4, normalized.count)]) }.joined(separator: "-")
        let ok = try await self.blocking.run { passwords.verify(formatted, encoded: stored.hash) }
        let failures = try await self.store.recordUserCodeAttempt(holderID: holder.id, success: ok)
        guard ok else {
            try await self.audit(holder.id, "usercode.check", target: holder.id, outcome: "refused", details: "wrong user code (\(failures)/\(Lockout.limit))")
            throw refused
        }
        return holder
    }

    private static func checkDigits(_ digits: Int) throws {
        guard HOTP.digitRange.contains(digits) else { throw SigilloError(.invalidRequest, "OTP codes have 6 to 8 digits") }
    }

    /// A mobile number in E.164 form without spaces. - Throws: `invalidRequest` otherwise.
    static func normalizedMobile(_ mobile: String) throws -> String {
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

extension PasswordHasher {
    /// A hash of a random password, verified against when the username is unknown so both paths cost the same.
    static let decoy: String = (try? PasswordHasher().hash(Secrets.token())) ?? ""
}
