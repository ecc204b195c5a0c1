import Foundation
import Logging
import PKCS11

/// Every use case of the service, by capability, built once from the store, the token and the CA. Each capability
/// is a small value holding only the narrow stores and shared values (audit log, OTP verifier, SMS sender, holder
/// keys, holder mail) it needs; the server hands each controller the capabilities it serves.
///
/// No signature is made unless the holder proved password and OTP for exactly the digests being signed, within the
/// SAD's lifetime and count, on an active credential with a valid certificate (`Authorization`, then `Signing`).
public struct Domain: Sendable {
    public let enrollment: Enrollment
    public let authentication: Authentication
    public let authorization: Authorization
    public let signing: Signing
    /// The OAuth2 authorization server (wallets' credential-scoped tokens).
    public let oauth: OAuthServer
    public let recovery: Recovery
    public let lifecycle: CredentialLifecycle
    public let administration: Administration
    public let auditTrail: AuditTrail
    /// The audit log every capability writes to (its aggregated rows are flushed by `AuditAggregationService`).
    public let audit: AuditLog
    public let settings: DomainSettings
    /// The certificate authority (its certificate ends every holder's chain).
    public let ca: any CertificateIssuer
    /// The CA's revocation list.
    public let crl: any RevocationList
    public let clock: ServiceClock
    /// The Argon2id hasher every password and user code check uses (its `verifications` count is what tests read).
    public let passwords: PasswordHasher
    /// The threads Argon2id runs on (their queue is a metric).
    public let blocking: BlockingExecutor
    /// Lockouts and messages, counted as they happen (read by the server's metrics).
    public let counters: OperationalCounters

    /// - Parameter mailer: where mails go; by default through `notifier` (channel `email`), as tests that read the
    ///   notifier want. The server passes the SMTP outbox (`OutboxMailer`).
    public init(store: any Store, signer: Signer, ca: any CertificateIssuer, crl: any RevocationList, settings: DomainSettings, notifier: any Notifier,
                mailer: (any Mailer)? = nil, passwords: PasswordHasher = PasswordHasher(), clock: ServiceClock = .system,
                blocking: BlockingExecutor = BlockingExecutor(), counters: OperationalCounters = OperationalCounters(),
                logger: Logger = Logger(label: "sigillo.core")) {
        let counted = CountingNotifier(base: notifier, counters: counters)
        let audit = AuditLog(store: store, clock: clock)
        let mail = HolderMail(mailer: mailer ?? NotifierMailer(notifier: counted, clock: clock), publicBaseURL: settings.publicBaseURL)
        let attempts = SecretAttempts(store: store, audit: audit, mail: mail, clock: clock, counters: counters)
        let otp = OTPVerifier(store: store, attempts: attempts, clock: clock)
        let sms = SMSSender(store: store, notifier: counted, audit: audit, clock: clock, codeLifetime: settings.smsCodeLifetime)
        let devices = OTPDevices(store: store, sms: sms, issuer: settings.otpIssuer)
        let keys = HolderKeys(signer: signer, storage: settings.holderKeys, logger: logger)
        let credentials = CredentialAccess(store: store, clock: clock, keys: keys)
        let states = HolderStates(store: store, audit: audit, clock: clock)
        let cache = HotPathCache()
        let authentication = Authentication(store: store, attempts: attempts, passwords: passwords, blocking: blocking, audit: audit, clock: clock, cache: cache)
        self.authentication = authentication
        self.enrollment = Enrollment(
            store: store, devices: devices, keys: keys, ca: ca, passwords: passwords, blocking: blocking, mail: mail, audit: audit, clock: clock, settings: settings)
        self.authorization = Authorization(
            store: store, authentication: authentication, credentials: credentials, otp: otp, sms: sms, audit: audit, clock: clock, settings: settings)
        self.signing = Signing(store: store, credentials: credentials, keys: keys, audit: audit, clock: clock, cache: cache)
        self.oauth = OAuthServer(
            store: store, authentication: authentication, credentials: credentials, otp: otp, sms: sms, audit: audit, clock: clock, settings: settings)
        self.recovery = Recovery(
            store: store, authentication: authentication, credentials: credentials, otp: otp, attempts: attempts, devices: devices, sms: sms,
            states: states, passwords: passwords, blocking: blocking, mail: mail, audit: audit, clock: clock)
        self.lifecycle = CredentialLifecycle(
            store: store, authentication: authentication, credentials: credentials, otp: otp, states: states, keys: keys, ca: ca, crl: crl,
            mail: mail, audit: audit, clock: clock, settings: settings, logger: logger)
        self.administration = Administration(
            store: store, enrollment: self.enrollment, lifecycle: self.lifecycle, recovery: self.recovery, crl: crl, audit: audit, clock: clock)
        self.auditTrail = AuditTrail(store: store, audit: audit, checkpoints: AuditCheckpoints(store: store, token: signer.token, clock: clock))
        self.audit = audit
        self.settings = settings
        self.ca = ca
        self.crl = crl
        self.clock = clock
        self.passwords = passwords
        self.blocking = blocking
        self.counters = counters
    }
}
