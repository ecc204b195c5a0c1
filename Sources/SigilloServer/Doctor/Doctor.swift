import Foundation
import Logging
import NIOSSL
import PKCS11
import SigilloDomain
import SigilloPKI
import SigilloPostgres
import SigilloSQLite
import X509
#if canImport(Glibc)
import Glibc
#endif

/// One line of `sigillo doctor`.
public struct DoctorCheck: Sendable, Equatable {
    public enum Status: String, Sendable {
        case ok, warning, fail
    }

    public var status: Status
    /// A short name: `configuration`, `tls-key`, `token`, `pin`, `ca`, `database`, `port public`, `clock`, …
    public var name: String
    /// What was found and, for a warning or a failure, what to do.
    public var message: String

    public init(_ status: Status, _ name: String, _ message: String) {
        self.status = status
        self.name = name
        self.message = message
    }

    /// `ok       name  message`, `WARNING  …`, `FAIL     …`.
    public var line: String {
        let label = switch self.status {
        case .ok: "ok     "
        case .warning: "WARNING"
        case .fail: "FAIL   "
        }
        return "\(label)  \(self.name.padding(toLength: max(self.name.count, 16), withPad: " ", startingAt: 0))  \(self.message)"
    }
}

/// `sigillo doctor`: checks a configuration before `sigillo serve` — files and their permissions, the token and its
/// PIN, the CA (and TSA) certificates against their keys, the KEK, the database (reachable, its schema, its seed key),
/// the ports, the clock — without changing anything: nothing is created in the token or the database, no migration
/// runs, and the PIN is tried once at most, never when the token says one more wrong PIN would lock it.
public struct Doctor: Sendable {
    public let configurationPath: String?
    public let environment: [String: String]
    /// The time the checks compare with (the system clock).
    public let now: Date

    public init(configurationPath: String?, environment: [String: String] = ProcessInfo.processInfo.environment, now: Date = Date()) {
        self.configurationPath = configurationPath
        self.environment = environment
        self.now = now
    }

    /// Every check, in order; `report` is told each line as soon as it is known.
    public func run(report: (DoctorCheck) -> Void = { _ in }) async -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        func add(_ check: DoctorCheck) {
            checks.append(check)
            report(check)
        }
        let configuration: ServerConfiguration
        do {
            configuration = try ServerConfiguration.load(path: self.configurationPath, environment: self.environment)
            _ = try configuration.holderProfile()
            _ = try configuration.timeStampSettings()
            _ = try configuration.mailDelivery(environment: self.environment)
            _ = try configuration.postgresSettings(environment: self.environment)
            add(.init(.ok, "configuration", self.configurationPath.map { "\($0) and the SIGILLO_* environment read" } ?? "defaults and the SIGILLO_* environment read (no --config)"))
        } catch {
            add(.init(.fail, "configuration", "\(error) — fix the configuration file or the SIGILLO_* variable named"))
            return checks
        }
        for check in self.files(configuration) { add(check) }
        let databaseState = await self.database(configuration, add)
        let token = self.token(configuration, add)
        if let token {
            defer { token.close() }
            let ca = await self.certificateAuthority(configuration, token: token, add)
            await self.keys(configuration, token: token, ca: ca, database: databaseState, add)
        }
        for check in self.ports(configuration) { add(check) }
        for check in self.clock(configuration, newestAudit: databaseState?.newestAudit) { add(check) }
        return checks
    }

    // MARK: Files

    func files(_ configuration: ServerConfiguration) -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        checks.append(self.file("tls-certificate", configuration.tlsCertificate, secret: false, fix: "make certs (development) or install the server certificate"))
        let key = self.file("tls-key", configuration.tlsKey, secret: true, fix: "install the server's private key (certs/dev-certs.sh makes a development one)")
        checks.append(key)
        if checks.allSatisfy({ $0.status != .fail }) {
            do {
                let tls = try SigilloApplication.tlsConfiguration(certificate: configuration.tlsCertificate, key: configuration.tlsKey)
                _ = try NIOSSLContext(configuration: tls)
                checks.append(.init(.ok, "tls-pair", "the TLS key matches \(configuration.tlsCertificate)"))
            } catch {
                checks.append(.init(.fail, "tls-pair", "\(configuration.tlsCertificate) and \(configuration.tlsKey) cannot be used together (\(error)) — install the key that goes with the certificate"))
            }
        }
        checks.append(self.file("admin-ca", configuration.adminCA, secret: false, fix: "install the CA of operators' client certificates (make certs makes a development one)"))
        if let variable = configuration.pinEnvironment {
            checks.append(self.environment[variable] == nil
                ? .init(.fail, "pin", "the PIN variable \(variable) is not set in this environment — set it where the server runs (a systemd credential or EnvironmentFile readable by the server alone)")
                : .init(.ok, "pin", "read from the environment variable \(variable)"))
        } else if let pinFile = configuration.pinFile, !configuration.token.hasPrefix("pkcs11:") || !configuration.token.contains("pin-") {
            checks.append(self.file("pin-file", pinFile, secret: true, fix: "write the token's user PIN to it, mode 600, owned by the server's user"))
        }
        if !PostgresSettings.isURL(configuration.database) {
            checks.append(self.databaseFolder(configuration.database))
        }
        return checks
    }

    /// A file that must exist and be readable; a `secret` one must not be readable by others (FAIL) nor by the group (warning).
    func file(_ name: String, _ path: String, secret: Bool, fix: String) -> DoctorCheck {
        var info = stat()
        guard stat(path, &info) == 0 else { return .init(.fail, name, "\(path) is missing — \(fix)") }
        guard info.st_mode & S_IFMT == S_IFREG else { return .init(.fail, name, "\(path) is not a regular file — \(fix)") }
        guard access(path, R_OK) == 0 else { return .init(.fail, name, "\(path) cannot be read by this user (uid \(geteuid())) — give it to the server's user") }
        let mode = String(info.st_mode & 0o777, radix: 8)
        if secret, info.st_mode & 0o007 != 0 {
            return .init(.fail, name, "\(path) can be read by every user (mode \(mode)) — chmod 600 \(path), and replace the secret if others could have read it")
        }
        if secret, info.st_mode & 0o070 != 0 {
            return .init(.warning, name, "\(path) can be read by its group (mode \(mode)) — chmod 600 \(path) unless the group is the server's alone")
        }
        return .init(.ok, name, "\(path)\(secret ? " (mode \(mode))" : "")")
    }

    /// The SQLite database's folder as `sigillo serve` requires it: private (0700), not writable by others.
    func databaseFolder(_ database: String) -> DoctorCheck {
        let folder = URL(fileURLWithPath: database).deletingLastPathComponent().path
        var info = stat()
        guard stat(folder, &info) == 0 else { return .init(.ok, "database-folder", "\(folder) does not exist yet: serve creates it (mode 700)") }
        let mode = info.st_mode & 0o777
        let octal = String(mode, radix: 8)
        guard info.st_mode & S_IFMT == S_IFDIR else { return .init(.fail, "database-folder", "\(folder) is not a folder — give the database a folder of its own") }
        if mode & 0o022 != 0 {
            return .init(.fail, "database-folder", "\(folder) can be written by other users (mode \(octal)): serve refuses it — give the database a folder of its own, chmod 700")
        }
        if mode & 0o077 != 0 {
            return .init(.warning, "database-folder", "\(folder) can be read by other users (mode \(octal)): serve makes it private at start — chmod 700 \(folder)")
        }
        return .init(.ok, "database-folder", "\(folder) (mode \(octal))")
    }

    // MARK: Token

    func token(_ configuration: ServerConfiguration, _ add: (DoctorCheck) -> Void) -> Token? {
        var tokenConfiguration: TokenConfiguration
        do {
            tokenConfiguration = try configuration.tokenConfiguration()
        } catch {
            add(.init(.fail, "token", "\(error) — fix token/pkcs11Module/pinFile in the configuration"))
            return nil
        }
        tokenConfiguration.sessions = 1
        let module: PKCS11Module
        do {
            module = try PKCS11Module.load(path: tokenConfiguration.modulePath)
            add(.init(.ok, "pkcs11-module", tokenConfiguration.modulePath))
        } catch {
            add(.init(.fail, "pkcs11-module", "\(tokenConfiguration.modulePath) cannot be loaded (\(error.detail)) — install the vendor's PKCS#11 module or fix pkcs11Module"))
            return nil
        }
        let state: TokenPINState
        do {
            state = try module.pinState(tokenLabel: tokenConfiguration.tokenLabel)
            add(.init(.ok, "token", "'\(state.label)' serial \(state.serial)"))
        } catch {
            let present = ((try? module.tokens()) ?? []).map { "'\($0.label)'" }
            add(.init(.fail, "token", "no initialised token labelled '\(tokenConfiguration.tokenLabel)' (present: \(present.isEmpty ? "none" : present.joined(separator: ", "))) — "
                + "create it (make token) or fix `token`; for SoftHSM check SOFTHSM2_CONF points at the token folder"))
            return nil
        }
        if state.locked {
            add(.init(.fail, "pin", "the token's user PIN is locked: no login was tried — the security officer must unlock it (a new user PIN: C_InitPIN, e.g. softhsm2-util or the vendor's tool)"))
            return nil
        }
        if state.finalTry {
            add(.init(.fail, "pin", "one more wrong PIN locks the token: doctor did not try it — compare the PIN source with the token's records first; the next login (serve's) is the last try"))
            return nil
        }
        do {
            let token = try Token.open(tokenConfiguration)
            add(.init(state.countLow ? .warning : .ok, "pin",
                      state.countLow ? "the PIN is right; the token reports a wrong PIN was tried since its last good login — find out who tried" : "the token accepted the PIN (one login)"))
            return token
        } catch where error.code == .pinIncorrect {
            add(.init(.fail, "pin", "the token refused the PIN — fix the PIN source (\(configuration.pinEnvironment.map { "variable \($0)" } ?? configuration.pinFile ?? "?")); "
                + "SoftHSM never locks (it only flags that a wrong PIN was tried), an HSM counts this attempt toward its lockout: check before trying again"))
        } catch where error.code == .pinUnavailable {
            add(.init(.fail, "pin", "the PIN cannot be read: \(error.detail) — fix pinFile or pinEnvironment"))
        } catch where error.code == .pinLocked {
            add(.init(.fail, "pin", "the token's user PIN is locked or expired — the security officer must set a new one"))
        } catch {
            add(.init(.fail, "token", "cannot log in: \(error) — check the module and the token"))
        }
        return nil
    }

    func certificateAuthority(_ configuration: ServerConfiguration, token: Token, _ add: (DoctorCheck) -> Void) async -> CertificateAuthority? {
        guard let pem = try? String(contentsOfFile: configuration.caCertificate, encoding: .utf8) else {
            add(.init(.fail, "ca", "the CA certificate \(configuration.caCertificate) is missing — run `sigillo ca init` (make run does) or `sigillo ca import`"))
            return nil
        }
        do {
            let ca = try await SigilloServices.openCertificateAuthority(configuration: configuration, token: token, certificatePEM: pem, now: self.now)
            add(.init(.ok, "ca", "\(configuration.caCertificate) matches key '\(configuration.caKeyID)' in the token\(FileManager.default.fileExists(atPath: configuration.caChain) ? ", chain \(configuration.caChain) valid" : "")"))
            var logger = Logger(label: "sigillo-doctor")
            logger.logLevel = .critical
            do {
                if try await SigilloServices.openTimeStampAuthority(configuration: configuration, token: token, ca: ca, clock: .system, logger: logger) != nil {
                    add(.init(.ok, "tsa", "\(configuration.tsaCertificate) matches key '\(configuration.tsaKeyID)'"))
                } else {
                    add(.init(.warning, "tsa", "\(configuration.tsaCertificate) is missing: no time-stamping authority — `sigillo ca init` makes it, or leave it out on purpose"))
                }
            } catch {
                add(.init(.fail, "tsa", "\(error) — reissue the TSA certificate (`sigillo ca init`) or fix tsaCertificate/tsaKeyID"))
            }
            return ca
        } catch {
            add(.init(.fail, "ca", "\(error) — install the certificate of the token's CA key, or fix caCertificate/caKeyID"))
            return nil
        }
    }

    // MARK: Database

    struct DatabaseState {
        var sealedKeyCheck: [UInt8]?
        var newestAudit: Date?
    }

    func database(_ configuration: ServerConfiguration, _ add: (DoctorCheck) -> Void) async -> DatabaseState? {
        let version: Int?
        let binary: Int
        var state = DatabaseState()
        let shown: String
        do {
            if let postgres = try configuration.postgresSettings(environment: self.environment) {
                shown = postgres.redacted
                binary = PostgresStore.schemaVersion
                let found = try await PostgresStore.inspect(settings: postgres)
                version = found.schemaVersion == 0 ? nil : found.schemaVersion
                state.sealedKeyCheck = found.keyCheck
                state.newestAudit = found.newestAudit
            } else {
                shown = configuration.database
                binary = SQLiteStore.schemaVersion
                version = try SQLiteStore.databaseSchemaVersion(path: configuration.database)
                if version != nil {
                    state.sealedKeyCheck = try SQLiteStore.sealedKeyCheck(path: configuration.database)
                    state.newestAudit = try SQLiteStore.newestAuditTime(path: configuration.database)
                }
            }
        } catch {
            add(.init(.fail, "database", "\(Self.redacted(configuration.database)) cannot be read: \(error) — check the URL, the password source and that the server runs; for SQLite, the file"))
            return nil
        }
        guard let version else {
            add(.init(.ok, "database", "\(shown) is new (no schema yet): serve creates version \(binary)"))
            return state
        }
        if version > binary {
            let found = version == Int.max ? "unknown to this binary" : "\(version)"
            add(.init(.fail, "database", "\(shown) has schema version \(found), newer than this binary's \(binary): serve refuses it — run the sigillo version that wrote it (or newer), or restore a backup this version made"))
        } else if version < binary {
            add(.init(.ok, "database", "\(shown) at schema version \(version): serve migrates it to \(binary) at start (back it up first: sigillo admin backup)"))
        } else {
            add(.init(.ok, "database", "\(shown) at schema version \(version), this binary's"))
        }
        return state
    }

    /// `database` with any password in a URL's user part hidden (`postgres://user:***@host/db`).
    static func redacted(_ database: String) -> String {
        guard PostgresSettings.isURL(database), let scheme = database.range(of: "://"), let at = database[scheme.upperBound...].firstIndex(of: "@") else { return database }
        let user = database[scheme.upperBound..<at]
        guard let colon = user.firstIndex(of: ":") else { return database }
        return String(database[..<colon]) + ":***" + String(database[at...])
    }

    /// The seed key against the database's, the KEK as `holderKeys` needs it, and the audit key.
    func keys(_ configuration: ServerConfiguration, token: Token, ca: CertificateAuthority?, database: DatabaseState?, _ add: (DoctorCheck) -> Void) async {
        if let database {
            if let sealed = database.sealedKeyCheck {
                do {
                    let vault = try await SeedVault.open(token: token, keyID: configuration.seedKeyID, create: false)
                    add(vault.keyCheck == sealed
                        ? .init(.ok, "seed-key", "'\(configuration.seedKeyID)' is the key this database was sealed with")
                        : .init(.fail, "seed-key", "the token's seed key '\(configuration.seedKeyID)' is not the one this database was sealed with: wrong token or database — use the token the database was backed up with (its manifest.json names it)"))
                } catch {
                    add(.init(.fail, "seed-key", "the database is sealed but the token has no usable seed key '\(configuration.seedKeyID)' (\(error)): wrong token — restore the token the database belongs to"))
                }
            } else {
                add(.init(.ok, "seed-key", "the database was never sealed: serve makes '\(configuration.seedKeyID)' in the token if it is missing"))
            }
        }
        let fresh = database.map { $0.sealedKeyCheck == nil } ?? false
        do {
            guard try await token.supportsKeyWrapping() else {
                add(configuration.holderKeys == .wrapped
                    ? .init(.fail, "kek", "holderKeys is wrapped but the token offers no key wrap mechanism — use holderKeys: token, or a token that wraps keys")
                    : .init(.ok, "kek", "the token cannot wrap keys: holder keys are token objects"))
                return
            }
            try await token.checkKEK()
            add(.init(.ok, "kek", "'\(configuration.kekID)' and its binding key are in the token, as strict as required"))
        } catch let error as PKCS11Error where error.code == .keyNotFound {
            switch (configuration.holderKeys, fresh) {
            case (.token, _):
                add(.init(.ok, "kek", "no key-encryption key; holderKeys is token"))
            case (_, true):
                add(.init(.ok, "kek", "no key-encryption key yet: serve creates '\(configuration.kekID)' for this new installation"))
            case (.wrapped, false):
                add(.init(.fail, "kek", "holderKeys is wrapped but the token has no '\(configuration.kekID)': wrong token (a new KEK opens none of the keys wrapped before) — restore the token, or `sigillo hsm create-kek` if this installation never wrapped keys"))
            case (nil, false):
                add(.init(.warning, "kek", "no key-encryption key: holder keys stay token objects — `sigillo hsm create-kek`, restart, `sigillo admin keys migrate`"))
            }
        } catch {
            add(.init(.fail, "kek", "'\(configuration.kekID)' cannot be used: \(error) — replace it with one made by `sigillo hsm create-kek`"))
        }
        if database?.sealedKeyCheck != nil {
            let present = (try? await token.containsKey(id: AuditCheckpoints.defaultKeyID)) ?? false
            add(present ? .init(.ok, "audit-key", "'\(AuditCheckpoints.defaultKeyID)' is in the token")
                : .init(.warning, "audit-key", "the token has no '\(AuditCheckpoints.defaultKeyID)': serve refuses to start if the audit log has checkpoints (wrong token), else makes one"))
        }
    }

    // MARK: Ports

    func ports(_ configuration: ServerConfiguration) -> [DoctorCheck] {
        let listeners = [("public", configuration.host, configuration.port), ("admin", configuration.adminHost, configuration.adminPort),
                         ("publication", configuration.pkiHost, configuration.pkiPort)]
        var checks: [DoctorCheck] = []
        for (index, (name, host, port)) in listeners.enumerated() {
            if let other = listeners.prefix(index).first(where: { $0.2 == port && port != 0 && ($0.1 == host || $0.1 == "0.0.0.0" || host == "0.0.0.0") }) {
                checks.append(.init(.fail, "port \(name)", "\(host):\(port) is also the \(other.0) listener's — give each listener its own port"))
                continue
            }
            if let error = Self.bindError(host: host, port: port) {
                checks.append(.init(.fail, "port \(name)", "\(host):\(port) cannot be bound: \(error) — stop what listens there (`ss -ltnp 'sport = :\(port)'`; a running sigillo?) or choose another port"))
            } else {
                checks.append(.init(.ok, "port \(name)", "\(host):\(port) is free"))
            }
        }
        return checks
    }

    /// Binds and listens on `host:port` (as the server does, with `SO_REUSEADDR`) and closes at once; nil when it worked.
    static func bindError(host: String, port: Int) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result else { return "cannot resolve \(host): \(String(cString: gai_strerror(status)))" }
        defer { freeaddrinfo(result) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { return String(cString: strerror(errno)) }
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0, listen(fd, 1) == 0 else { return String(cString: strerror(errno)) }
        return nil
    }

    // MARK: Clock

    /// The clock against the CA certificate's validity and the newest audit record, and its NTP synchronisation.
    public func clock(_ configuration: ServerConfiguration, newestAudit: Date?) -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        let formatter = ISO8601DateFormatter()
        var problems: [String] = []
        if let pem = try? String(contentsOfFile: configuration.caCertificate, encoding: .utf8), let certificate = try? Certificate(pemEncoded: pem) {
            if self.now < certificate.notValidBefore {
                problems.append("it is before the CA certificate's start (\(formatter.string(from: certificate.notValidBefore)))")
            } else if self.now > certificate.notValidAfter {
                problems.append("the CA certificate expired \(formatter.string(from: certificate.notValidAfter)) — renew the CA")
            }
        }
        // A record written by this installation cannot be from the future; a minute covers another node's clock.
        if let newestAudit, newestAudit > self.now.addingTimeInterval(60) {
            problems.append("the newest audit record is from \(formatter.string(from: newestAudit)), later than now")
        }
        if problems.isEmpty {
            checks.append(.init(.ok, "clock", "\(formatter.string(from: self.now)) is after the CA certificate's start and the newest audit record"))
        } else {
            checks.append(.init(.fail, "clock", "the clock says \(formatter.string(from: self.now)), but \(problems.joined(separator: "; and ")) — set the clock right (NTP) before starting"))
        }
        checks.append(Self.ntp())
        return checks
    }

    /// `timedatectl show -p NTPSynchronized --value`: a warning when the clock is not synchronised or it cannot be told.
    static func ntp() -> DoctorCheck {
        guard let path = ["/usr/bin/timedatectl", "/bin/timedatectl"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            return .init(.warning, "ntp", "cannot tell whether the clock is NTP-synchronised (no timedatectl) — check chrony/ntpd; time-stamps state \(1000) ms accuracy by default")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["show", "-p", "NTPSynchronized", "--value"]
        process.environment = ["PATH": "/usr/bin:/bin", "LC_ALL": "C"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return .init(.warning, "ntp", "timedatectl did not run (\(error)) — check the clock's synchronisation by hand")
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        process.waitUntilExit()
        switch text {
        case "yes": return .init(.ok, "ntp", "the clock is NTP-synchronised (timedatectl)")
        case "no": return .init(.warning, "ntp", "the clock is not NTP-synchronised (timedatectl) — enable systemd-timesyncd or chrony: certificates, OCSP and time-stamps carry its time")
        default: return .init(.warning, "ntp", "timedatectl cannot tell (no systemd here?) — check the clock's synchronisation by hand")
        }
    }
}
