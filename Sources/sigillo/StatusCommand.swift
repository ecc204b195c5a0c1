import ArgumentParser
import Foundation
import CSCClient
import CSCProtocol

/// `sigillo status`: the holder's state (enrolment, active, expiring, expired, suspended, revoked) and credentials.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show your account's state and your credentials.")

    @OptionGroup var connection: Activate.Connection

    @Option(help: "Your username.")
    var username: String

    @Flag(help: "Read the password from standard input.")
    var passwordStdin = false

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let password: String
        if self.passwordStdin {
            guard let line = readLine(strippingNewline: true) else { throw ValidationError("standard input must hold the password") }
            password = line
        } else {
            password = try Terminal.secret("Password: ")
        }
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
