import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import PKCS11
import SigilloDomain
import SigilloMail
import SigilloPKI
import SigilloSQLite
import SigilloPostgres
import X509

/// What a running server holds: the token pool, the store, the CA and the domain service.
public struct SigilloServices: Sendable {
    public let token: Token
    public let store: any Store
    public let ca: CertificateAuthority
    /// Every use case, by capability.
    public let domain: Domain
    /// The CA's current CRL.
    public let crl: CRLPublisher
    /// The OCSP responder for the CA's certificates.
    public let ocsp: OCSPResponder
    /// The time-stamping authority (RFC 3161), when its certificate is configured.
    public let tsa: TimeStampAuthority?
    /// Queues mail for holders (`MailTemplates` gives the content); `mailDispatcher` delivers it.
    public let mailer: any Mailer
    /// Delivers the mail outbox: run it in the server's `ServiceGroup` (`sigillo serve` does).
    public let mailDispatcher: MailDispatcher
    /// The server's metrics (Prometheus text at the admin listener's `GET /metrics`).
    public let metrics = SigilloMetrics()

    /// Opens the store and loads the CA (certificate file + key in the token).
    ///
    /// - Throws: `ConfigurationError` when the CA is missing or does not match its key in the token.
    public static func open(configuration: ServerConfiguration, token: Token, clock: ServiceClock = .system, passwords: PasswordHasher = PasswordHasher(), logger: Logger) async throws -> SigilloServices {
        let fresh = try await !self.isSealed(configuration: configuration, logger: logger)
        let store = try await self.openStore(configuration: configuration, token: token, logger: logger)
        var settings = DomainSettings(publicBaseURL: configuration.publicBaseURL, pkiBaseURL: configuration.pkiBaseURL)
        settings.holderKeys = try await self.holderKeyStorage(configuration: configuration, token: token, freshInstallation: fresh, logger: logger)
        logger.info("holder keys", metadata: ["storage": "\(settings.holderKeys.rawValue)", "kek": "\(configuration.kekID)"])
        guard let pem = try? String(contentsOfFile: configuration.caCertificate, encoding: .utf8) else {
            throw ConfigurationError("CA certificate \(configuration.caCertificate) is missing: run `sigillo ca init` (make run does)")
        }
        let ca = try await self.openCertificateAuthority(configuration: configuration, token: token, certificatePEM: pem, now: clock.now())
        let mail = try configuration.mailDelivery()
        logger.info("mail delivery", metadata: ["transport": "\(mail.transport)", "from": "\(mail.from)"])
        let dispatcher = MailDispatcher(store: store, transport: mail.transport, from: mail.from, clock: clock, logger: logger)
        let mailer = OutboxMailer(store: store, clock: clock, dispatcher: dispatcher)
        let crl = CRLPublisher(ca: ca, store: store, clock: clock)
        let domain = Domain(
            store: store, signer: Signer(token: token), ca: ca, crl: crl, settings: settings,
            notifier: OutboxNotifier(file: configuration.outboxFile), mailer: mailer, passwords: passwords, clock: clock, logger: logger)
        do {
            // The audit key, made at first start (like the seed key), signs the audit log's checkpoints.
            try await domain.auditTrail.checkpoints.prepare()
        } catch {
            throw ConfigurationError("the audit key cannot be used in the token: \(error)")
        }
        let ocsp = try OCSPResponder(ca: ca, store: store, clock: clock)
        let tsa = try await self.openTimeStampAuthority(configuration: configuration, token: token, ca: ca, clock: clock, logger: logger)
        return SigilloServices(token: token, store: store, ca: ca, domain: domain, crl: crl, ocsp: ocsp, tsa: tsa, mailer: mailer, mailDispatcher: dispatcher)
    }

    /// The CA: its certificate `caCertificatePEM`, its key `caKeyID` in the token, the chain above it from `caChain` (if
    /// that file exists) and the holder profile from `qualifiedProfile`.
    ///
    /// - Throws: `ConfigurationError` when the key does not match, the chain does not validate the CA certificate
    ///   now, or the profile is wrong.
    static func openCertificateAuthority(configuration: ServerConfiguration, token: Token, certificatePEM pem: String, now: Date) async throws -> CertificateAuthority {
        let certificate: Certificate
        var chain: [Certificate] = []
        do {
            certificate = try Certificate(pemEncoded: pem)
            if FileManager.default.fileExists(atPath: configuration.caChain) {
                chain = try CertificateAuthority.certificates(pem: try String(contentsOfFile: configuration.caChain, encoding: .utf8), what: configuration.caChain)
            }
        } catch {
            throw ConfigurationError("the CA certificate \(configuration.caCertificate) or its chain \(configuration.caChain) cannot be read: \(error)")
        }
        let ca = try CertificateAuthority(token: token, keyID: configuration.caKeyID, certificate: certificate, chain: chain, profile: try configuration.holderProfile())
        do {
            try await ca.checkKeyInToken()
        } catch {
            throw ConfigurationError("the CA certificate \(configuration.caCertificate) does not match key '\(configuration.caKeyID)' in the token: \(error)")
        }
        if !chain.isEmpty {
            do {
                try await ca.checkChain(now: now)
            } catch {
                throw ConfigurationError("the CA chain \(configuration.caChain) does not validate \(configuration.caCertificate): \(error)")
            }
        }
        return ca
    }

    /// The TSA whose certificate is `configuration.tsaCertificate` and key `tsaKeyID`; nil (with a warning) when there
    /// is no such file.
    ///
    /// - Throws: `ConfigurationError` when the certificate is not the CA's time-stamping certificate for that key.
    static func openTimeStampAuthority(configuration: ServerConfiguration, token: Token, ca: CertificateAuthority, clock: ServiceClock,
                                       logger: Logger) async throws -> TimeStampAuthority? {
        guard let pem = try? String(contentsOfFile: configuration.tsaCertificate, encoding: .utf8) else {
            logger.warning("no time-stamping authority: \(configuration.tsaCertificate) is missing (`sigillo ca init` makes it)")
            return nil
        }
        do {
            let certificate = try Certificate(pemEncoded: pem)
            guard certificate.issuer == ca.certificate.subject,
                  ca.certificate.publicKey.isValidSignature(certificate.signature, for: certificate) else {
                throw ConfigurationError("it was not issued by the CA \(configuration.caCertificate)")
            }
            let tsa = try TimeStampAuthority(token: token, keyID: configuration.tsaKeyID, certificate: certificate, chain: ca.chainDER, clock: clock,
                                             settings: try configuration.timeStampSettings())
            try await tsa.checkKeyInToken()
            return tsa
        } catch {
            throw ConfigurationError("the TSA certificate \(configuration.tsaCertificate) cannot be used with key '\(configuration.tsaKeyID)': \(error)")
        }
    }
}

extension SigilloServices {
    /// The store `configuration.database` names (an SQLite file, or PostgreSQL for several nodes), opened with the seed
    /// vault: the seed key is made in the token only for a database that was never sealed.
    ///
    /// - Throws: `ConfigurationError` when the seed key cannot be used; the store's errors (another token's database, a
    ///   database newer than this binary, PostgreSQL unreachable).
    public static func openStore(configuration: ServerConfiguration, token: Token, logger: Logger) async throws -> any Store {
        let postgres = try configuration.postgresSettings()
        let sealed = try await self.isSealed(configuration: configuration, logger: logger)
        let vault: SeedVault
        do {
            vault = try await SeedVault.open(token: token, keyID: configuration.seedKeyID, create: !sealed)
        } catch {
            throw ConfigurationError("the seed key '\(configuration.seedKeyID)' cannot be used in the token: \(error)")
        }
        if let postgres {
            logger.info("store", metadata: ["database": "\(postgres.redacted)"])
            return try await PostgresStore(settings: postgres, vault: vault, logger: logger)
        }
        return try SQLiteStore(path: configuration.database, vault: vault) { logger.warning("\($0)") }
    }
}

extension SigilloServices {
    /// Whether the configured database was ever opened with the seed vault (false for a new installation).
    static func isSealed(configuration: ServerConfiguration, logger: Logger) async throws -> Bool {
        if let postgres = try configuration.postgresSettings() {
            return try await PostgresStore.isSealed(settings: postgres, logger: logger)
        }
        return try SQLiteStore.isSealed(path: configuration.database)
    }

    /// Where new holder keys go (`ServerConfiguration.holderKeys`), the KEK checked in the token and created for a new
    /// installation: wrapped when configured so or left out (unless an installation from before wrapped keys has no KEK:
    /// then token objects, until the operator creates the KEK and runs `sigillo admin keys migrate`; or the token cannot
    /// wrap keys at all, as through p11-kit 0.24's RPC client, which carries no AES key wrap mechanism).
    ///
    /// - Throws: `ConfigurationError` when the KEK is not as strict as required, or `wrapped` is configured for an existing
    ///   database whose token has no KEK (another token, or a lost KEK: a new one would not open the keys wrapped before).
    public static func holderKeyStorage(configuration: ServerConfiguration, token: Token, freshInstallation: Bool, logger: Logger) async throws -> HolderKeyStorage {
        guard try await token.supportsKeyWrapping() else {
            if configuration.holderKeys == .wrapped {
                throw ConfigurationError("holderKeys is wrapped but the token offers no mechanism to wrap keys (CKM_AES_KEY_WRAP_PAD or CKM_AES_CBC_PAD)")
            }
            logger.notice("holder keys are token objects: the token offers no mechanism to wrap keys (CKM_AES_KEY_WRAP_PAD or CKM_AES_CBC_PAD)")
            return .token
        }
        var hasKEK = true
        do {
            try await token.checkKEK()
        } catch let error as PKCS11Error where error.code == .keyNotFound {
            hasKEK = false
        } catch {
            throw ConfigurationError("the key-encryption key '\(configuration.kekID)' cannot be used: \(error)")
        }
        switch configuration.holderKeys {
        case .token:
            return .token
        case .wrapped:
            if !hasKEK {
                guard freshInstallation else {
                    throw ConfigurationError(
                        "holderKeys is wrapped but the token has no key-encryption key '\(configuration.kekID)': create it with `sigillo hsm create-kek` "
                            + "(if this database already holds wrapped keys, this is the wrong token: a new KEK cannot open them)")
                }
                try await token.createKEK()
                logger.notice("key-encryption key created in the token", metadata: ["kek": "\(configuration.kekID)"])
            }
            return .wrapped
        case nil:
            if hasKEK { return .wrapped }
            if freshInstallation {
                try await token.createKEK()
                logger.notice("key-encryption key created in the token", metadata: ["kek": "\(configuration.kekID)"])
                return .wrapped
            }
            logger.notice("holder keys stay token objects: the token has no key-encryption key; create it (`sigillo hsm create-kek`), then run `sigillo admin keys migrate`")
            return .token
        }
    }
}

/// Builds the public HTTPS application.
public enum SigilloApplication {
    /// The TLS settings of the public listener: certificate chain and key from PEM files, and `restrictProtocols`.
    public static func tlsConfiguration(certificate: String, key: String) throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        self.restrictProtocols(&tls)
        return tls
    }

    /// The TLS 1.2 suites every listener accepts: forward secrecy (ECDHE) and authenticated encryption (AES-GCM,
    /// ChaCha20-Poly1305) only, for ECDSA and RSA server keys, strongest first. No CBC suite (Lucky Thirteen and its
    /// kin), no static RSA key exchange.
    public static let cipherSuites: [NIOTLSCipher] = [
        .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ]

    /// What every listener (public and admin) allows: TLS 1.2 with `cipherSuites` only, or TLS 1.3 (whose suites
    /// are all AEAD; BoringSSL does not let them be chosen).
    static func restrictProtocols(_ tls: inout TLSConfiguration) {
        tls.minimumTLSVersion = .tlsv12
        tls.cipherSuiteValues = self.cipherSuites
    }

    /// The router with every public route; the anonymous ones bounded by `rateLimits`.
    public static func router(services: SigilloServices, rateLimits: RateLimitSettings = RateLimitSettings()) -> Router<SigilloContext> {
        let router = Router(context: SigilloContext.self)
        // First, so that every answer carries them (Hummingbird applies a middleware to the routes added after it).
        router.add(middleware: RequestIDMiddleware(listener: "public", metrics: services.metrics))
        router.add(middleware: StrictTransportSecurityMiddleware())
        router.add(middleware: JSONErrorMiddleware())
        let domain = services.domain
        router.add(middleware: RateLimitMiddleware(settings: rateLimits, store: services.store, audit: domain.audit, clock: domain.clock))
        HealthController(token: services.token, store: services.store).addRoutes(to: router)
        OpenAPIController(OpenAPI.publicListener(timeStamps: services.tsa != nil)).addRoutes(to: router)
        CSCController(
            authentication: domain.authentication, authorization: domain.authorization, signing: domain.signing,
            caChainDER: services.ca.chainDER, clock: domain.clock, name: "Sigillo", timeStamps: services.tsa, metrics: services.metrics, oauth2Issuer: domain.oauth.issuer
        ).addRoutes(to: router)
        OAuthController(oauth: domain.oauth).addRoutes(to: router)
        OAuthPageController(oauth: domain.oauth).addRoutes(to: router)
        ActivationController(enrollment: domain.enrollment).addRoutes(to: router)
        SelfServiceController(authentication: domain.authentication, recovery: domain.recovery, lifecycle: domain.lifecycle).addRoutes(to: router)
        RecoveryController(recovery: domain.recovery, lifecycle: domain.lifecycle).addRoutes(to: router)
        WebController(enrollment: domain.enrollment, recovery: domain.recovery, lifecycle: domain.lifecycle).addRoutes(to: router)
        PKIController(ca: services.ca, crl: services.crl).addRoutes(to: router)
        OCSPController(responder: services.ocsp, clock: domain.clock).addRoutes(to: router)
        return router
    }

    /// The application serving `configuration` over TLS.
    public static func make(configuration: ServerConfiguration, services: SigilloServices, logger: Logger, onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) throws -> some ApplicationProtocol {
        try Templates.check()
        let tls = try self.tlsConfiguration(certificate: configuration.tlsCertificate, key: configuration.tlsKey)
        return Application(
            router: self.router(services: services, rateLimits: configuration.rateLimits),
            server: try .tls(.http1(), tlsConfiguration: tls),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Sigillo"),
            onServerRunning: onServerRunning,
            logger: logger
        )
    }
}
