import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import SigilloDomain

/// Builds the admin HTTPS application: mutual TLS with the admin CA, JSON API under `/admin/v1`.
public enum AdminApplication {
    /// Server certificate and key as for the public listener, the same protocols and suites, and a client certificate
    /// issued by the admin CA (`adminCA`) required from every client (no hostname check: clients are people).
    public static func tlsConfiguration(certificate: String, key: String, adminCA: String) throws -> TLSConfiguration {
        guard FileManager.default.isReadableFile(atPath: adminCA) else {
            throw ConfigurationError("admin CA certificate \(adminCA) is missing: run certs/dev-certs.sh (make run does)")
        }
        let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
        let roots = try NIOSSLCertificate.fromPEMFile(adminCA)
        var tls = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)), trustRoots: .certificates(roots))
        SigilloApplication.restrictProtocols(&tls)
        tls.certificateVerification = .noHostnameVerification
        return tls
    }

    /// The router with every admin route.
    /// - Parameter configuration: the key ids a backup's manifest names (`BackupController`).
    public static func router(services: SigilloServices, configuration: ServerConfiguration = ServerConfiguration()) -> Router<AdminContext> {
        let router = Router(context: AdminContext.self)
        router.add(middleware: RequestIDMiddleware(listener: "admin", metrics: services.metrics))
        router.add(middleware: StrictTransportSecurityMiddleware())
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: OperatorMiddleware())
        OpenAPIController(OpenAPI.adminListener()).addRoutes(to: router)
        // Prometheus scrapes it with an operator certificate (mutual TLS, like every admin route).
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            headers[.cacheControl] = "no-store"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: await services.metricsText())))
        }
        BackupController(services: services, configuration: configuration).addRoutes(to: router)
        AdminController(admin: services.domain.administration, lifecycle: services.domain.lifecycle, recovery: services.domain.recovery, auditTrail: services.domain.auditTrail,
                        oauth: services.domain.oauth).addRoutes(to: router)
        return router
    }

    /// The admin application on `adminHost:adminPort`.
    public static func make(configuration: ServerConfiguration, services: SigilloServices, logger: Logger, onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) throws -> some ApplicationProtocol {
        let tls = try self.tlsConfiguration(certificate: configuration.tlsCertificate, key: configuration.tlsKey, adminCA: configuration.adminCA)
        return Application(
            router: self.router(services: services, configuration: configuration),
            server: try .tls(.http1(), tlsConfiguration: tls),
            configuration: .init(address: .hostname(configuration.adminHost, port: configuration.adminPort), serverName: "Sigillo admin"),
            onServerRunning: onServerRunning,
            logger: logger
        )
    }
}
