import Foundation
import NIOSSL
import PostgresNIO
import SigilloDomain

/// Where the PostgreSQL database is: parsed from `postgres://user@host:port/database?sslmode=…` (the configuration's
/// `database`), the password from a file or an environment variable, never from the URL's text in logs.
public struct PostgresSettings: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 5432
    /// A folder holding PostgreSQL's socket (`host=/path` in the URL's query), instead of TCP.
    public var unixSocketPath: String?
    public var username = "sigillo"
    public var password: String?
    public var database = "sigillo"
    /// TLS to the database: `sslmode=disable` (default on loopback), `prefer` or `require` (verifying the server
    /// against the system's roots, or `sslrootcert=FILE`).
    public var tlsMode: TLSMode = .disable
    /// The CA the server's certificate must chain to (`sslrootcert=`); the system's roots otherwise.
    public var tlsRootCertificate: String?

    public enum TLSMode: String, Sendable {
        case disable, prefer, require
    }

    /// TLS to the server as `tlsMode` asks (`prefer`: TLS if the server offers it; `require`: TLS, server verified).
    var tlsConfiguration: TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let root = self.tlsRootCertificate { tls.trustRoots = .file(root) }
        return tls
    }
    public var maximumConnections = 20
    public var connectionWait: Duration = .seconds(3)

    public init() {}

    /// Whether `database` names a PostgreSQL database rather than an SQLite file.
    public static func isURL(_ database: String) -> Bool {
        database.hasPrefix("postgres://") || database.hasPrefix("postgresql://")
    }

    /// Parses `url`. The password comes from `passwordFile` (first line), else the environment variable
    /// `passwordEnvironment`, else the URL itself (accepted, but a file or variable keeps it out of configuration files).
    ///
    /// - Throws: `SigilloError(.invalidRequest)` naming what is wrong.
    public init(url: String, passwordFile: String? = nil, passwordEnvironment: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard Self.isURL(url), let components = URLComponents(string: url), let host = components.host else {
            throw SigilloError(.invalidRequest, "database: expected postgres://user@host:port/database, got something else")
        }
        self.init()
        if !host.isEmpty { self.host = host }
        if let port = components.port { self.port = port }
        if let user = components.user, !user.isEmpty { self.username = user.removingPercentEncoding ?? user }
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        if !path.isEmpty { self.database = path }
        var mode = "disable"
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode": mode = item.value ?? ""
            case "sslrootcert": self.tlsRootCertificate = item.value
            case "host": self.unixSocketPath = item.value.map { $0.hasSuffix(".s.PGSQL.\(self.port)") ? $0 : "\($0)/.s.PGSQL.\(self.port)" }
            case "pool": self.maximumConnections = try Self.positive(item.value, "pool")
            case "connect_wait": self.connectionWait = .seconds(try Self.positive(item.value, "connect_wait"))
            default: throw SigilloError(.invalidRequest, "database: unknown URL parameter \(item.name)")
            }
        }
        switch mode {
        case "disable": self.tlsMode = .disable
        case "prefer": self.tlsMode = .prefer
        case "require", "verify-full": self.tlsMode = .require
        default: throw SigilloError(.invalidRequest, "database: sslmode must be disable, prefer, require or verify-full")
        }
        if let passwordFile {
            guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw SigilloError(.invalidRequest, "database password file \(passwordFile) cannot be read")
            }
            self.password = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        } else if let passwordEnvironment {
            guard let value = environment[passwordEnvironment] else {
                throw SigilloError(.invalidRequest, "database password variable \(passwordEnvironment) is not set")
            }
            self.password = value
        }
    }

    private static func positive(_ value: String?, _ name: String) throws -> Int {
        guard let value, let number = Int(value), number > 0 else { throw SigilloError(.invalidRequest, "database: \(name) must be a positive number") }
        return number
    }

    /// The URL without its password, for logs and messages.
    public var redacted: String {
        "postgres://\(self.username)@\(self.unixSocketPath ?? "\(self.host):\(self.port)")/\(self.database)"
    }
}

extension PostgresSettings {
    /// The pool's configuration (its connection limits set by the store).
    var clientConfiguration: PostgresClient.Configuration {
        if let socket = self.unixSocketPath {
            return .init(unixSocketPath: socket, username: self.username, password: self.password, database: self.database)
        }
        let tls: PostgresClient.Configuration.TLS
        switch self.tlsMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(self.tlsConfiguration)
        case .require: tls = .require(self.tlsConfiguration)
        }
        return .init(host: self.host, port: self.port, username: self.username, password: self.password, database: self.database, tls: tls)
    }

    /// The same, for one connection outside the pool (probes).
    var connectionConfiguration: PostgresConnection.Configuration {
        get throws {
            if let socket = self.unixSocketPath {
                return .init(unixSocketPath: socket, username: self.username, password: self.password, database: self.database)
            }
            let tls: PostgresConnection.Configuration.TLS
            switch self.tlsMode {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try .init(configuration: self.tlsConfiguration))
            case .require: tls = .require(try .init(configuration: self.tlsConfiguration))
            }
            return .init(host: self.host, port: self.port, username: self.username, password: self.password, database: self.database, tls: tls)
        }
    }
}
