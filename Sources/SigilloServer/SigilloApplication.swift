import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import PKCS11
import SigilloCore

/// Builds the public HTTPS application.
public enum SigilloApplication {
    /// The TLS settings of every listener: TLS 1.2 or newer, certificate chain and key from PEM files.
    public static func tlsConfiguration(certificate: String, key: String) throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        tls.minimumTLSVersion = .tlsv12
        return tls
    }

    /// The router with every public route.
    public static func router(token: Token) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: JSONErrorMiddleware())
        HealthController(token: token).addRoutes(to: router)
        return router
    }

    /// The application serving `configuration` over TLS with an open token.
    public static func make(configuration: ServerConfiguration, token: Token, logger: Logger, onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) throws -> some ApplicationProtocol {
        let tls = try self.tlsConfiguration(certificate: configuration.tlsCertificate, key: configuration.tlsKey)
        return Application(
            router: self.router(token: token),
            server: try .tls(.http1(), tlsConfiguration: tls),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Sigillo"),
            onServerRunning: onServerRunning,
            logger: logger
        )
    }
}
