import ArgumentParser
import Foundation
import Hummingbird
import Logging
import PKCS11
import ServiceLifecycle
import SigilloDomain
import SigilloServer

extension LogFormat: ExpressibleByArgument {}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the signing server: the public HTTPS listener and the mutual-TLS admin listener.")

    @Option(help: "JSON configuration file; SIGILLO_* environment variables override it.")
    var config: String?

    @Option(help: "Log level (trace, debug, info, notice, warning, error).")
    var logLevel: String = "info"

    @Option(help: "Log format: text (one readable line per event) or json (one JSON object per line: time, level, label, message, metadata).")
    var logFormat: LogFormat = .text

    func validate() throws {
        guard Logger.Level(rawValue: self.logLevel) != nil else {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() async throws {
        self.logFormat.bootstrap()
        var logger = Logger(label: "sigillo")
        logger.logLevel = Logger.Level(rawValue: self.logLevel) ?? .info
        let configuration = try ServerConfiguration.load(path: self.config)
        let tokenConfiguration = try configuration.tokenConfiguration()
        let token: Token
        do {
            token = try Token.open(tokenConfiguration)
        } catch {
            logger.critical("cannot open the token", metadata: ["error": "\(error)"])
            throw ExitCode(3)
        }
        defer { token.close() }
        logger.info("token open", metadata: ["label": "\(tokenConfiguration.tokenLabel)", "sessions": "\(token.sessionCount)"])
        let services = try await SigilloServices.open(configuration: configuration, token: token, logger: logger)
        let app = try SigilloApplication.make(configuration: configuration, services: services, logger: logger)
        let admin = try AdminApplication.make(configuration: configuration, services: services, logger: logger)
        let pki = PKIApplication.make(configuration: configuration, services: services, logger: logger)
        logger.info("publication listener (plain HTTP: CA certificate, CRL, OCSP\(services.tsa == nil ? "" : ", TSA"))",
                    metadata: ["address": "\(configuration.pkiHost):\(configuration.pkiPort)", "url": "\(configuration.pkiBaseURL)"])
        logger.info("admin listener (mutual TLS)", metadata: ["address": "\(configuration.adminHost):\(configuration.adminPort)", "ca": "\(configuration.adminCA)"])
        // The expiry jobs (states, reminders, expiry notices) and the daily CRL, hourly.
        let scheduler = LifecycleScheduler(lifecycle: services.domain.lifecycle, crl: services.crl, logger: logger)
        // Refusals anyone can cause are summed up in the audit log: their rows are written every minute and at shutdown.
        let auditAggregation = AuditAggregationService(audit: services.domain.audit, logger: logger)
        // The audit log's head signed with the token's audit key at start, every 1000 records or 5 minutes, and at shutdown.
        let checkpointer = AuditCheckpointer(checkpoints: services.domain.auditTrail.checkpoints, logger: logger)
        // Both listeners, the mail dispatcher and the scheduler in one group: SIGTERM/SIGINT stop all gracefully (in
        // reverse order: the audit aggregation after the listeners, the checkpointer last); one failing stops the others.
        let group = ServiceGroup(configuration: .init(services: [checkpointer, auditAggregation, app, admin, pki, services.mailDispatcher, scheduler],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.info("stopped")
    }
}

