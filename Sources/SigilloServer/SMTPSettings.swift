import Foundation
import Logging
import SigilloDomain
import SigilloMail

/// The `smtp` section of the configuration: the relay every mail goes through. Without it, mails are delivered to
/// the development file `mailFile` instead (so `make run` works without a relay).
///
/// The password is never in here: it is read from `passwordFile` or the environment variable named by
/// `passwordEnvironment` when the server starts, and never logged.
public struct SMTPSettings: Codable, Sendable, Equatable {
    public var host: String
    public var port = 587
    /// The sender address of every mail (`From:` and `MAIL FROM`).
    public var from = ""
    /// The sender's display name.
    public var fromName: String? = "Sigillo"
    /// The name given in EHLO; default: the host of `publicBaseURL`.
    public var heloName: String?
    /// `required` (default): STARTTLS or no mail; `starttls`: STARTTLS when offered; `none`: plain text (loopback dev only).
    public var tls: SMTPConfiguration.TLSMode = .required
    /// PEM CA file for the relay's certificate; default: the system trust store.
    public var caFile: String?
    public var username: String?
    public var passwordFile: String?
    public var passwordEnvironment: String?

    public init(host: String) {
        self.host = host
    }

    enum CodingKeys: String, CodingKey {
        case host, port, from, fromName, heloName, tls, caFile, username, passwordFile, passwordEnvironment
    }

    /// Every field but `host` may be left out.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.host = try container.decode(String.self, forKey: .host)
        self.port = try container.decodeIfPresent(Int.self, forKey: .port) ?? self.port
        self.from = try container.decodeIfPresent(String.self, forKey: .from) ?? self.from
        if container.contains(.fromName) { self.fromName = try container.decodeIfPresent(String.self, forKey: .fromName) }
        self.heloName = try container.decodeIfPresent(String.self, forKey: .heloName)
        self.tls = try container.decodeIfPresent(SMTPConfiguration.TLSMode.self, forKey: .tls) ?? self.tls
        self.caFile = try container.decodeIfPresent(String.self, forKey: .caFile)
        self.username = try container.decodeIfPresent(String.self, forKey: .username)
        self.passwordFile = try container.decodeIfPresent(String.self, forKey: .passwordFile)
        self.passwordEnvironment = try container.decodeIfPresent(String.self, forKey: .passwordEnvironment)
    }

    /// The client settings, with the password read from its file or environment variable.
    /// - Throws: `ConfigurationError` naming what is wrong (never the password).
    func clientConfiguration(defaultHELO: String, environment: [String: String]) throws -> SMTPConfiguration {
        var credentials: SMTPConfiguration.Credentials?
        if let username = self.username {
            let password: String
            if let name = self.passwordEnvironment {
                guard let value = environment[name], !value.isEmpty else { throw ConfigurationError("SMTP password variable \(name) is not set") }
                password = value
            } else if let file = self.passwordFile {
                guard let data = FileManager.default.contents(atPath: file) else { throw ConfigurationError("SMTP password file \(file) cannot be read") }
                password = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
            } else {
                throw ConfigurationError("smtp.username is set but neither smtp.passwordFile nor smtp.passwordEnvironment")
            }
            credentials = SMTPConfiguration.Credentials(username: username, password: password)
        } else if self.passwordFile != nil || self.passwordEnvironment != nil {
            throw ConfigurationError("an SMTP password is configured without smtp.username")
        }
        return SMTPConfiguration(host: self.host, port: self.port, heloName: self.heloName ?? defaultHELO, tls: self.tls, caFile: self.caFile, credentials: credentials)
    }
}

extension ServerConfiguration {
    /// `SIGILLO_SMTP_*` overrides; `SIGILLO_SMTP_HOST` alone creates the section.
    mutating func applySMTP(environment: [String: String]) throws {
        if let host = environment["SIGILLO_SMTP_HOST"] {
            if self.smtp == nil { self.smtp = SMTPSettings(host: host) } else { self.smtp?.host = host }
        }
        if let value = environment["SIGILLO_MAIL_FILE"] { self.mailFile = value.isEmpty ? nil : value }
        let optional: [(String, WritableKeyPath<SMTPSettings, String?>)] = [
            ("SIGILLO_SMTP_FROM_NAME", \.fromName), ("SIGILLO_SMTP_HELO", \.heloName), ("SIGILLO_SMTP_CA_FILE", \.caFile),
            ("SIGILLO_SMTP_USERNAME", \.username), ("SIGILLO_SMTP_PASSWORD_FILE", \.passwordFile), ("SIGILLO_SMTP_PASSWORD_ENV", \.passwordEnvironment),
        ]
        let names = environment.keys.filter { $0.hasPrefix("SIGILLO_SMTP_") && $0 != "SIGILLO_SMTP_HOST" }
        let known = Set(["SIGILLO_SMTP_PORT", "SIGILLO_SMTP_TLS", "SIGILLO_SMTP_FROM"] + optional.map(\.0))
        if let unknown = names.filter({ !known.contains($0) }).sorted().first {
            throw ConfigurationError("\(unknown) is not a setting (known: SIGILLO_SMTP_HOST, \(known.sorted().joined(separator: ", ")))")
        }
        guard var smtp = self.smtp else {
            if let name = names.sorted().first { throw ConfigurationError("\(name) needs an SMTP relay: set SIGILLO_SMTP_HOST or smtp.host") }
            return
        }
        if let text = environment["SIGILLO_SMTP_PORT"] {
            guard let port = Int(text) else { throw ConfigurationError("SIGILLO_SMTP_PORT must be a number, got '\(text)'") }
            smtp.port = port
        }
        if let text = environment["SIGILLO_SMTP_TLS"] {
            guard let mode = SMTPConfiguration.TLSMode(rawValue: text) else {
                throw ConfigurationError("SIGILLO_SMTP_TLS must be one of \(SMTPConfiguration.TLSMode.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
            }
            smtp.tls = mode
        }
        if let value = environment["SIGILLO_SMTP_FROM"] { smtp.from = value }
        for (name, field) in optional {
            if let value = environment[name] { smtp[keyPath: field] = value }
        }
        self.smtp = smtp
    }

    /// The mail transport and sender: the SMTP relay when configured, else the development file.
    /// - Throws: `ConfigurationError` for an unusable `smtp` section (bad sender, unreadable CA or password, credentials without TLS).
    public func mailDelivery(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (transport: any MailTransport, from: MailAddress) {
        guard let smtp = self.smtp else {
            guard let file = self.mailFile else { throw ConfigurationError("no SMTP relay (smtp.host) and no development mailFile") }
            return (MailFileTransport(file: file), try MailAddress("sigillo@localhost.localdomain", name: "Sigillo (development)"))
        }
        let from: MailAddress
        do {
            from = try MailAddress(smtp.from, name: smtp.fromName)
        } catch {
            throw ConfigurationError("smtp.from (SIGILLO_SMTP_FROM) must be the sender's address, got '\(smtp.from)'")
        }
        let helo = URL(string: self.publicBaseURL)?.host ?? "localhost"
        do {
            return (try SMTPClient(configuration: try smtp.clientConfiguration(defaultHELO: helo, environment: environment)), from)
        } catch let error as SigilloError {
            throw ConfigurationError(error.message)
        }
    }
}
