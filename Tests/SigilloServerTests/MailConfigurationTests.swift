import Foundation
import CSCProtocol
import SigilloDomain
import SigilloMail
import SigilloSQLite
import SigilloServer
import SigilloTestSupport
import Testing

@Suite("Configuration: the smtp section and SIGILLO_SMTP_* variables")
struct MailConfigurationTests {
    func load(_ json: String?, _ environment: [String: String]) throws -> ServerConfiguration {
        guard let json else { return try ServerConfiguration.load(path: nil, environment: environment) }
        let file = try TestHSM.makeTemporaryDirectory().appendingPathComponent("sigillo.json")
        let object: [String: Any] = ["smtp": try JSONSerialization.jsonObject(with: Data(json.utf8))]
        try JSONSerialization.data(withJSONObject: object).write(to: file)
        return try ServerConfiguration.load(path: file.path, environment: environment)
    }

    @Test("A configuration file sets only the fields it names; null clears an optional one; an unknown field is refused")
    func partialFile() throws {
        let file = try TestHSM.makeTemporaryDirectory().appendingPathComponent("sigillo.json")
        try Data(#"{"port": 9443, "database": "/srv/sigillo/db.sqlite", "outboxFile": null}"#.utf8).write(to: file)
        let configuration = try ServerConfiguration.load(path: file.path, environment: ["SIGILLO_HOST": "0.0.0.0"])
        var expected = ServerConfiguration()
        expected.port = 9443
        expected.database = "/srv/sigillo/db.sqlite"
        expected.outboxFile = nil
        expected.host = "0.0.0.0"
        #expect(configuration == expected)

        try Data(#"{"prot": 9443}"#.utf8).write(to: file)
        let error = #expect(throws: ConfigurationError.self) { try ServerConfiguration.load(path: file.path, environment: [:]) }
        #expect(error?.description.contains("unknown configuration field 'prot'") == true, "\(String(describing: error))")
        try Data(#"{"port": "8443"}"#.utf8).write(to: file)
        #expect(throws: ConfigurationError.self) { try ServerConfiguration.load(path: file.path, environment: [:]) }
    }

    @Test("No relay: mails go to the development file")
    func development() throws {
        let configuration = try self.load(nil, [:])
        #expect(configuration.smtp == nil && configuration.mailFile == "var/mail.jsonl")
        #expect(try configuration.mailDelivery(environment: [:]).transport is MailFileTransport)
    }

    @Test("A partial smtp section takes the defaults; the environment wins; the password comes from a file or a variable")
    func relay() throws {
        let directory = try TestHSM.makeTemporaryDirectory()
        let passwordFile = directory.appendingPathComponent("smtp.password").path
        try Data("pa$$word\n".utf8).write(to: URL(fileURLWithPath: passwordFile))
        let configuration = try self.load(#"{"host": "relay.example.it", "from": "firma@example.it", "username": "sigillo", "passwordFile": "\#(passwordFile)"}"#, [
            "SIGILLO_SMTP_PORT": "2525", "SIGILLO_SMTP_TLS": "starttls",
        ])
        let smtp = try #require(configuration.smtp)
        #expect(smtp.host == "relay.example.it" && smtp.port == 2525 && smtp.tls == .starttls && smtp.fromName == "Sigillo")
        let delivery = try configuration.mailDelivery(environment: [:])
        let client = try #require(delivery.transport as? SMTPClient)
        #expect(client.configuration.credentials == SMTPConfiguration.Credentials(username: "sigillo", password: "pa$$word"))
        #expect(client.configuration.heloName == "127.0.0.1")
        #expect(!"\(client.configuration)".contains("pa$$word"))
        #expect(delivery.from.address == "firma@example.it")

        var fromEnvironment = try self.load(nil, ["SIGILLO_SMTP_HOST": "relay.example.it", "SIGILLO_SMTP_FROM": "firma@example.it",
                                                  "SIGILLO_SMTP_USERNAME": "sigillo", "SIGILLO_SMTP_PASSWORD_ENV": "RELAY_PASSWORD"])
        #expect(fromEnvironment.smtp?.tls == .required && fromEnvironment.smtp?.port == 587)
        let viaVariable = try #require(try fromEnvironment.mailDelivery(environment: ["RELAY_PASSWORD": "x"]).transport as? SMTPClient)
        #expect(viaVariable.configuration.credentials?.password == "x")
        fromEnvironment.smtp?.passwordEnvironment = nil
        #expect(throws: ConfigurationError.self) { try fromEnvironment.mailDelivery(environment: [:]) }
    }

    @Test("Mistakes are clear errors at start-up, never a crash", arguments: [
        (#"{"host": "relay.example.it"}"#, [String: String]()),                                      // no sender
        (#"{"host": "relay.example.it", "from": "firma@example.it", "tls": "none", "username": "u", "passwordFile": "/dev/null"}"#, [:]),
        (#"{"host": "relay.example.it", "from": "firma@example.it", "caFile": "/nonexistent/ca.pem"}"#, [:]),
        (#"{"host": "relay.example.it", "from": "firma@example.it", "passwordFile": "/dev/null"}"#, [:]),
        (#"{"host": "relay.example.it", "from": "firma@example.it", "port": 0}"#, [:]),
    ])
    func mistakes(json: String, environment: [String: String]) throws {
        let configuration = try self.load(json, environment)
        #expect(throws: ConfigurationError.self) { try configuration.mailDelivery(environment: [:]) }
    }

    @Test("Bad variables are refused when the configuration loads")
    func badVariables() {
        #expect(throws: ConfigurationError.self) { try self.load(nil, ["SIGILLO_SMTP_HOST": "r.example.it", "SIGILLO_SMTP_TLS": "maybe"]) }
        #expect(throws: ConfigurationError.self) { try self.load(nil, ["SIGILLO_SMTP_HOST": "r.example.it", "SIGILLO_SMTP_PORT": "smtp"]) }
        #expect(throws: ConfigurationError.self) { try self.load(nil, ["SIGILLO_SMTP_PORT": "25"]) }
        #expect(throws: ConfigurationError.self) { try self.load(nil, ["SIGILLO_SMTP_HOST": "r.example.it", "SIGILLO_SMTP_PASSWORD": "never here"]) }
        #expect(throws: (any Error).self) { try self.load(#"{"host": "r.example.it", "tls": "maybe"}"#, [:]) }
    }
}
