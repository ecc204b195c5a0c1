import Crypto
import Foundation
import Logging
import SigilloDomain
import SigilloMail
import SigilloSQLite
import SigilloTestSupport
import Testing

/// `Tests/Interop/smtp_sink.py`: a real SMTP server (aiosmtpd, from the project's venv) on 127.0.0.1 that writes each
/// message it accepts to a folder, with what Python's email parser reads from it.
struct SMTPSink {
    let relay: TestSMTPRelay
    var port: Int { self.relay.port }
    var folder: URL { self.relay.folder }

    /// Starts the sink (`port` 0: a free one); `options` are the script's flags (`--reject-rcpt nobody`, …).
    static func start(folder: URL, port: Int = 0, certificates: RelayCertificates? = nil, options: [String] = [], password: String? = nil) async throws -> SMTPSink {
        var flags = options
        if let certificates { flags += ["--tls-cert", certificates.chain, "--tls-key", certificates.key] }
        var environment = TestHSM.environment
        if let password { environment["SMTP_SINK_PASSWORD"] = password }
        return SMTPSink(relay: try await TestSMTPRelay.sink(folder: folder, port: port, options: flags, environment: environment))
    }

    /// Starts `Tests/Interop/smtp_script.py` in `mode` (`silent`, `inject`, `ragged`): a relay that misbehaves on purpose.
    static func misbehaving(_ mode: String, folder: URL) async throws -> SMTPSink {
        SMTPSink(relay: try await TestSMTPRelay.launch("smtp_script.py", ["--mode", mode, "--dir", folder.path], folder: folder))
    }

    func stop() async {
        await self.relay.stop()
    }

    /// Every message received so far, in order.
    func messages() throws -> [ReceivedMail] {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try self.relay.receivedDescriptions().map { try decoder.decode(ReceivedMail.self, from: Data(contentsOf: $0)) }
    }

    /// A client configuration for this sink.
    func configuration(tls: SMTPConfiguration.TLSMode, caFile: String? = nil, credentials: SMTPConfiguration.Credentials? = nil) -> SMTPConfiguration {
        Self.configuration(port: self.port, tls: tls, caFile: caFile, credentials: credentials)
    }

    /// A client configuration for a relay on 127.0.0.1:`port`.
    static func configuration(port: Int, tls: SMTPConfiguration.TLSMode, caFile: String? = nil, credentials: SMTPConfiguration.Credentials? = nil) -> SMTPConfiguration {
        SMTPConfiguration(host: "127.0.0.1", port: port, heloName: "sigillo.test", tls: tls, caFile: caFile, credentials: credentials)
    }
}

/// One message as the sink received it (see `smtp_sink.py`).
struct ReceivedMail: Decodable {
    let mailFrom: String
    let rcptTos: [String]
    let tls: Bool
    let authUser: String?
    let authMechanism: String?
    let headers: [String: String?]
    let fromAddress: String?
    let fromName: String?
    let dateIso: String?
    let contentType: String
    let charset: String?
    let body: String
    let defects: [String]
    let longestLine: Int
    let bareLf: Bool

    func header(_ name: String) -> String? { self.headers[name] ?? nil }
    /// The decoded body with LF line ends.
    var text: String { self.body.replacingOccurrences(of: "\r\n", with: "\n") }
}

/// A test CA and a relay certificate for 127.0.0.1 and localhost, made with openssl.
struct RelayCertificates {
    let caFile: String
    let chain: String
    let key: String

    static func make(in folder: URL) async throws -> RelayCertificates {
        let path = { (name: String) in folder.appendingPathComponent(name).path }
        try Data("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n".utf8).write(to: URL(fileURLWithPath: path("ext.cnf")))
        for arguments in [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path("ca-key.pem"), "-out", path("ca.pem"),
             "-days", "2", "-subj", "/CN=Sigillo Test Relay CA"],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path("relay-key.pem"), "-out", path("relay.csr"),
             "-subj", "/CN=localhost"],
            ["x509", "-req", "-in", path("relay.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca-key.pem"), "-CAcreateserial", "-days", "2",
             "-extfile", path("ext.cnf"), "-out", path("relay.pem")],
        ] {
            let result = try await runOffPool("openssl", arguments)
            try #require(result.status == 0, "openssl \(arguments[0]): \(result.output)")
        }
        return RelayCertificates(caFile: path("ca.pem"), chain: path("relay.pem"), key: path("relay-key.pem"))
    }
}

/// A store, a mailer and a dispatcher on a fresh database, with a clock the test sets.
struct MailFixture {
    let directory: URL
    let store: SQLiteStore
    let dispatcher: MailDispatcher
    let mailer: OutboxMailer
    static let t0 = Date(timeIntervalSince1970: 1_790_000_000)
    static let from = try! MailAddress("firma@sigillo.example.it", name: "Servizio Firma — Sigillo")
    /// One key for every fixture, so that two fixtures on one database (a restart) open each other's mail.
    static let vault = SeedVault(key: SymmetricKey(size: .bits256))

    init(transport: any MailTransport, directory: URL? = nil, now: Date = MailFixture.t0) throws {
        self.directory = try directory ?? TestHSM.makeTemporaryDirectory()
        // A vault as the server has (a software key here): the bodies are sealed while they wait, as in production.
        self.store = try SQLiteStore(path: self.directory.appendingPathComponent("mail.sqlite").path, vault: Self.vault)
        self.dispatcher = MailDispatcher(store: self.store, transport: transport, from: Self.from, clock: ServiceClock { now }, logger: Logger(label: "mail-test"))
        self.mailer = OutboxMailer(store: self.store, clock: ServiceClock { now }, dispatcher: self.dispatcher)
    }

    init(smtp: SMTPConfiguration, directory: URL? = nil) throws {
        try self.init(transport: try SMTPClient(configuration: smtp), directory: directory)
    }

    func mail(_ id: String? = nil) async throws -> QueuedMail {
        let mails = try await self.store.mails()
        return try #require(id.map { id in mails.first { $0.id == id } } ?? mails.last)
    }
}
