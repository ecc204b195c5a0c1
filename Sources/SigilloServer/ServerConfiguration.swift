import Foundation
import PKCS11
import SigilloDomain
import SigilloPKI
import SigilloPostgres

/// Everything `sigillo serve` needs, from a JSON file and `SIGILLO_*` environment variables (which win).
///
/// Paths are relative to the working directory. Secrets are never in here: the token PIN comes from a file
/// or an environment variable named by `pinFile` / `pinEnvironment`.
public struct ServerConfiguration: Codable, Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 8443
    public var tlsCertificate = "certs/server.pem"
    public var tlsKey = "certs/server-key.pem"
    /// The admin listener (mutual TLS; same server certificate as the public one).
    public var adminHost = "127.0.0.1"
    public var adminPort = 8444
    /// Operators' client certificates must be issued by this CA (`certs/dev-certs.sh` makes a development one).
    public var adminCA = "certs/admin-ca.pem"
    public var pkcs11Module = "/usr/lib/softhsm/libsofthsm2.so"
    /// A token label, or an RFC 7512 `pkcs11:` URI.
    public var token = "sigillo"
    public var pinFile: String? = "hsm-config/user.pin"
    public var pinEnvironment: String?
    /// PKCS#11 sessions (and HSM worker threads); 0 means one per CPU.
    public var hsmSessions = 0
    /// An SQLite file (the embedded default), or a PostgreSQL database for several nodes:
    /// `postgres://user@host:port/database[?sslmode=require&sslrootcert=FILE&pool=20]` (`PostgresSettings`).
    public var database = "var/sigillo.sqlite"
    /// The PostgreSQL password: the first line of this file, or the environment variable named by
    /// `databasePasswordEnvironment` (never in the URL of a configuration file).
    public var databasePasswordFile: String?
    public var databasePasswordEnvironment: String?
    /// The public URL clients use (CSC API, activation and recovery links).
    public var publicBaseURL = "https://127.0.0.1:8443"
    /// The plain-HTTP publication listener (RFC 5280/6960/5019/3161 objects are signed: no TLS needed): the CA
    /// certificate, the CRL, OCSP and the time-stamping authority, and nothing else.
    public var pkiHost = "127.0.0.1"
    public var pkiPort = 8080
    /// The URL of the publication listener as relying parties reach it, written in every certificate issued (CRL
    /// distribution point, OCSP and CA issuers). `http://`: validators fetch it without trusting any TLS CA.
    public var pkiBaseURL = "http://127.0.0.1:8080"
    /// The time-stamping authority's certificate (issued by the CA; `sigillo ca init` makes it and its key
    /// `tsaKeyID`); no file: no TSA (`POST /tsa` answers 404).
    public var tsaCertificate = "certs/tsa.pem"
    public var tsaKeyID = "sigillo-tsa"
    /// The TSA policy (TSTInfo `policy`), a dotted OID; by default ETSI EN 319 421's best-practices time-stamp
    /// policy (BTSP), which a provider replaces with its own policy's OID.
    public var tsaPolicy = "0.4.0.2023.1.1"
    /// The accuracy the TSA states, in milliseconds (the clock is NTP-disciplined within it).
    public var tsaAccuracyMilliseconds = 1_000
    /// The signing CA's certificate; its key is `caKeyID` in the token (`sigillo ca init` makes both).
    public var caCertificate = "certs/ca.pem"
    public var caKeyID = "sigillo-ca"
    /// The certificates above the CA, up to and including the provider's root, PEM (`sigillo ca import --chain`
    /// writes it); no file: the CA is its own root (the self-signed development CA of `sigillo ca init`).
    public var caChain = "certs/ca-chain.pem"
    /// The qualified certificate profile of holder certificates (`QualifiedProfileSettings`).
    public var qualifiedProfile = QualifiedProfileSettings()
    /// The token's secret key that seals the OTP seeds in the database (see `SeedVault`); generated at first start.
    public var seedKeyID = "sigillo-seed-key"
    /// Where new holder keys are kept: `wrapped` under the token's key-encryption key in the credential row, or as
    /// `token` objects. Left out: wrapped for a new installation (the KEK is created at its first start) and for one
    /// whose token has the KEK; token for an installation from before wrapped keys whose token has none.
    public var holderKeys: HolderKeyStorage?
    /// The token's key-encryption key (AES-256, wrap/unwrap only) and, beside it, `<kekID>-binding` (HMAC).
    public var kekID = TokenConfiguration.defaultKEKID
    /// Unwrapped holder keys each HSM session keeps (least recently used evicted first).
    public var unwrappedKeyCache = TokenConfiguration.defaultUnwrappedKeyCacheSize
    /// Development notifier: messages (SMS codes) are appended here as JSON lines.
    public var outboxFile: String? = "var/outbox.jsonl"
    /// The mail relay (`SMTPSettings`); nil: mails are delivered to `mailFile`, one JSON line each (development).
    public var smtp: SMTPSettings?
    public var mailFile: String? = "var/mail.jsonl"
    /// Anonymous requests per client address and per account (`RateLimitSettings`).
    public var rateLimits = RateLimitSettings()

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case host, port, tlsCertificate, tlsKey, adminHost, adminPort, adminCA, pkcs11Module, token, pinFile, pinEnvironment, hsmSessions
        case database, databasePasswordFile, databasePasswordEnvironment, publicBaseURL, pkiHost, pkiPort, pkiBaseURL, tsaCertificate, tsaKeyID
        case tsaPolicy, tsaAccuracyMilliseconds, caCertificate, caKeyID, seedKeyID, outboxFile, smtp, mailFile, rateLimits
        case holderKeys, kekID, unwrappedKeyCache
        case caChain, qualifiedProfile
    }

    /// Every field may be left out (the defaults above apply); a field this version does not know is refused, so a
    /// misspelt one is not silently ignored.
    public init(from decoder: any Decoder) throws {
        try ConfigurationError.refuseUnknownFields(decoder, known: CodingKeys.self, what: "configuration field")
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let decoded = try container.decodeIfPresent(T.self, forKey: key) { value = decoded }
        }
        func readOptional<T: Decodable>(_ key: CodingKeys, _ value: inout T?) throws {
            // An explicit null clears an optional default (no PIN file, no outbox file).
            if container.contains(key) { value = try container.decodeIfPresent(T.self, forKey: key) }
        }
        try read(.host, &self.host)
        try read(.port, &self.port)
        try read(.tlsCertificate, &self.tlsCertificate)
        try read(.tlsKey, &self.tlsKey)
        try read(.adminHost, &self.adminHost)
        try read(.adminPort, &self.adminPort)
        try read(.adminCA, &self.adminCA)
        try read(.pkcs11Module, &self.pkcs11Module)
        try read(.token, &self.token)
        try readOptional(.pinFile, &self.pinFile)
        try readOptional(.pinEnvironment, &self.pinEnvironment)
        try read(.hsmSessions, &self.hsmSessions)
        try read(.database, &self.database)
        try readOptional(.databasePasswordFile, &self.databasePasswordFile)
        try readOptional(.databasePasswordEnvironment, &self.databasePasswordEnvironment)
        try read(.publicBaseURL, &self.publicBaseURL)
        try read(.pkiHost, &self.pkiHost)
        try read(.pkiPort, &self.pkiPort)
        try read(.pkiBaseURL, &self.pkiBaseURL)
        try read(.tsaCertificate, &self.tsaCertificate)
        try read(.tsaKeyID, &self.tsaKeyID)
        try read(.tsaPolicy, &self.tsaPolicy)
        try read(.tsaAccuracyMilliseconds, &self.tsaAccuracyMilliseconds)
        try read(.caCertificate, &self.caCertificate)
        try read(.caKeyID, &self.caKeyID)
        try read(.seedKeyID, &self.seedKeyID)
        try readOptional(.outboxFile, &self.outboxFile)
        try readOptional(.smtp, &self.smtp)
        try readOptional(.mailFile, &self.mailFile)
        try read(.rateLimits, &self.rateLimits)
        try readOptional(.holderKeys, &self.holderKeys)
        try read(.kekID, &self.kekID)
        try read(.unwrappedKeyCache, &self.unwrappedKeyCache)
        try read(.caChain, &self.caChain)
        try read(.qualifiedProfile, &self.qualifiedProfile)
    }

    /// Reads `path` if it exists (a missing default file is fine), then applies the environment.
    public static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServerConfiguration {
        var configuration = ServerConfiguration()
        if let path {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError("configuration file \(path) cannot be read")
            }
            do {
                configuration = try JSONDecoder().decode(ServerConfiguration.self, from: data)
            } catch {
                throw ConfigurationError("configuration file \(path) is not valid: \(error)")
            }
        }
        try configuration.apply(environment: environment)
        return configuration
    }

    mutating func apply(environment: [String: String]) throws {
        func int(_ name: String) throws -> Int? {
            guard let text = environment[name] else { return nil }
            guard let value = Int(text) else { throw ConfigurationError("\(name) must be a number, got '\(text)'") }
            return value
        }
        if let value = environment["SIGILLO_HOST"] { self.host = value }
        if let value = try int("SIGILLO_PORT") { self.port = value }
        if let value = environment["SIGILLO_ADMIN_HOST"] { self.adminHost = value }
        if let value = try int("SIGILLO_ADMIN_PORT") { self.adminPort = value }
        if let value = environment["SIGILLO_ADMIN_CA"] { self.adminCA = value }
        if let value = environment["SIGILLO_TLS_CERTIFICATE"] { self.tlsCertificate = value }
        if let value = environment["SIGILLO_TLS_KEY"] { self.tlsKey = value }
        if let value = environment["SIGILLO_PKCS11_MODULE"] { self.pkcs11Module = value }
        if let value = environment["SIGILLO_TOKEN"] { self.token = value }
        if let value = environment["SIGILLO_PIN_FILE"] { self.pinFile = value }
        if let value = environment["SIGILLO_PIN_ENV"] { self.pinEnvironment = value }
        if let value = try int("SIGILLO_HSM_SESSIONS") { self.hsmSessions = value }
        if let value = environment["SIGILLO_DATABASE"] { self.database = value }
        if let value = environment["SIGILLO_DATABASE_PASSWORD_FILE"] { self.databasePasswordFile = value }
        if let value = environment["SIGILLO_DATABASE_PASSWORD_ENV"] { self.databasePasswordEnvironment = value }
        if let value = environment["SIGILLO_PUBLIC_URL"] { self.publicBaseURL = value }
        if let value = environment["SIGILLO_PKI_HOST"] { self.pkiHost = value }
        if let value = try int("SIGILLO_PKI_PORT") { self.pkiPort = value }
        if let value = environment["SIGILLO_PKI_URL"] { self.pkiBaseURL = value }
        if let value = environment["SIGILLO_TSA_CERTIFICATE"] { self.tsaCertificate = value }
        if let value = environment["SIGILLO_CA_CERTIFICATE"] { self.caCertificate = value }
        if let value = environment["SIGILLO_CA_CHAIN"] { self.caChain = value }
        if let value = environment["SIGILLO_OUTBOX_FILE"] { self.outboxFile = value }
        if let value = try int("SIGILLO_RATE_LIMIT_PER_ADDRESS") { self.rateLimits.perAddress = value }
        if let value = try int("SIGILLO_RATE_LIMIT_PER_ACCOUNT") { self.rateLimits.perAccount = value }
        if let value = environment["SIGILLO_HOLDER_KEYS"] {
            guard let storage = HolderKeyStorage(rawValue: value) else { throw ConfigurationError("SIGILLO_HOLDER_KEYS must be wrapped or token, got '\(value)'") }
            self.holderKeys = storage
        }
        if let value = try int("SIGILLO_UNWRAPPED_KEY_CACHE") { self.unwrappedKeyCache = value }
        guard (1...1_000_000).contains(self.unwrappedKeyCache) else {
            throw ConfigurationError("unwrappedKeyCache must be 1...1000000, got \(self.unwrappedKeyCache)")
        }
        guard !self.kekID.isEmpty else { throw ConfigurationError("kekID must not be empty") }
        try self.rateLimits.validate()
        try self.applySMTP(environment: environment)
    }

    /// The PostgreSQL database `database` names, with its password; nil when `database` is an SQLite file.
    ///
    /// - Throws: `ConfigurationError` for a malformed URL or a password source that cannot be read.
    public func postgresSettings(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PostgresSettings? {
        guard PostgresSettings.isURL(self.database) else { return nil }
        do {
            return try PostgresSettings(url: self.database, passwordFile: self.databasePasswordFile, passwordEnvironment: self.databasePasswordEnvironment,
                                        environment: environment)
        } catch let error as SigilloError {
            throw ConfigurationError(error.message)
        }
    }

    /// The time-stamping authority's settings: `tsaPolicy` and `tsaAccuracyMilliseconds`.
    ///
    /// - Throws: `ConfigurationError` for a policy that is not a dotted OID or an accuracy out of 1 ms to 1 hour.
    public func timeStampSettings() throws -> TimeStampAuthority.Settings {
        guard (1...3_600_000).contains(self.tsaAccuracyMilliseconds) else {
            throw ConfigurationError("tsaAccuracyMilliseconds must be 1 to 3600000, got \(self.tsaAccuracyMilliseconds)")
        }
        let accuracy = TimeStampAuthority.Accuracy(seconds: self.tsaAccuracyMilliseconds / 1000, millis: self.tsaAccuracyMilliseconds % 1000)
        do {
            return try TimeStampAuthority.Settings(policyOID: self.tsaPolicy, accuracy: accuracy)
        } catch let error as SigilloError {
            throw ConfigurationError(error.message)
        }
    }

    /// The qualified certificate profile of holder certificates, from `qualifiedProfile` (PDS URLs by default under
    /// `pkiBaseURL`).
    ///
    /// - Throws: `ConfigurationError` naming the field that is wrong.
    public func holderProfile() throws -> QualifiedCertificateProfile {
        try self.qualifiedProfile.profile(pkiBaseURL: self.pkiBaseURL)
    }

    /// The token configuration: a `pkcs11:` URI or a label, with the module and PIN source configured here.
    public func tokenConfiguration() throws -> TokenConfiguration {
        let sessions = self.hsmSessions > 0 ? self.hsmSessions : ProcessInfo.processInfo.activeProcessorCount
        let pin: PINSource? = self.pinEnvironment.map { .environment($0) } ?? self.pinFile.map { .file($0) }
        var configuration: TokenConfiguration
        if self.token.hasPrefix("pkcs11:") {
            configuration = try TokenConfiguration(uri: self.token, modulePath: self.pkcs11Module, pin: pin, sessions: sessions)
        } else {
            guard let pin else { throw ConfigurationError("no PIN source: set pinFile or pinEnvironment") }
            configuration = TokenConfiguration(modulePath: self.pkcs11Module, tokenLabel: self.token, pin: pin, sessions: sessions)
        }
        configuration.kekID = self.kekID
        configuration.unwrappedKeyCacheSize = self.unwrappedKeyCache
        return configuration
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension ConfigurationError {
    /// Refuses a field `known` does not name (a misspelt one is not silently ignored): "unknown `what` 'name'".
    static func refuseUnknownFields<Key: CodingKey & RawRepresentable<String>>(_ decoder: any Decoder, known: Key.Type, what: String) throws {
        let unknown = try decoder.container(keyedBy: AnyCodingKey.self).allKeys.map(\.stringValue).filter { Key(rawValue: $0) == nil }
        if let name = unknown.sorted().first { throw ConfigurationError("unknown \(what) '\(name)'") }
    }
}
