import ArgumentParser
import Foundation
import CSCClient
import CSCProtocol

/// `sigillo status`: the holder's state (enrolment, active, expiring, expired, suspended, revoked) and credentials.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show your account's state and your credentials.",
        discussion: "Password: with --password-stdin from standard input; otherwise from SIGILLO_PASSWORD, else prompted without echo in a terminal."
    )

    @OptionGroup var connection: Activate.Connection

    @Option(help: "Your username.")
    var username: String

    @Flag(help: "Read the password from standard input (else SIGILLO_PASSWORD, else asked in a terminal).")
    var passwordStdin = false

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        // The same sources as `sigillo sign`: standard input with --password-stdin, else SIGILLO_PASSWORD, else the terminal.
        let password = try Secrets(fromStandardInput: self.passwordStdin).password(for: self.username)
        let client = try self.connection.client()
        do {
            let status = try await client.status(username: self.username, password: password)
            try await client.shutdown()
            if self.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
                print(String(decoding: try encoder.encode(status), as: UTF8.self))
                return
            }
            print("state       \(status.state) (\(status.description))")
            for credential in status.credentials {
                let reason = credential.revocationReason.map { " (\($0))" } ?? ""
                print("credential  \(credential.credentialID)  \(credential.status)\(reason)  serial \(credential.serialNumber)  valid until \(credential.notAfter)")
            }
            if status.state == "active_expiring" { print("Your certificate expires soon: renew it at \(self.connection.server)/renew") }
        } catch let error as CSCClientError {
            try? await client.shutdown()
            throw ValidationError("\(error)")
        }
    }
}
