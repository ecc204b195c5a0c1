import ArgumentParser
import Foundation
import CSCClient
import CSCProtocol

/// The holder's activation from the command line (the same routes the activation page uses).
struct Activate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Activate a signing credential with the invitation code.",
        subcommands: [Begin.self, Complete.self]
    )

    struct Connection: ParsableArguments {
        @Option(help: "The signing service.")
        var server: String = "https://127.0.0.1:8443"

        @Option(help: "CA certificates (PEM) the server's TLS certificate must chain to.")
        var ca: String = "certs/tls-ca.pem"

        func client() throws -> CSCClient {
            try CSCClient(baseURL: self.server, trustRootsPEMFile: FileManager.default.fileExists(atPath: self.ca) ? self.ca : nil)
        }
    }

    struct Begin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Bind an OTP device: prints the authenticator app's secret and otpauth:// URI (or sends an SMS).")

        @OptionGroup var connection: Connection

        @Option(help: "The activation code from the invitation.")
        var code: String

        @Option(help: "totp (phone app), hotp (hardware token: --serial, --seed) or sms.")
        var device: String = "totp"

        @Option(help: "Hardware token serial number.")
        var serial: String?

        @Option(help: "Hardware token seed (hex or base32), from the manufacturer's file.")
        var seed: String?

        @Flag(help: "Print JSON.")
        var json = false

        func run() async throws {
            let client = try self.connection.client()
            do {
                let answer = try await client.beginActivation(code: self.code, device: self.device, serial: self.serial, seed: self.seed)
                try await client.shutdown()
                if self.json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                    print(String(decoding: try encoder.encode(answer), as: UTF8.self))
                    return
                }
                if let uri = answer.otpauthURI, let secret = answer.secret {
                    print("Add this account to your authenticator app (scan the URI as a QR code, or type the secret):")
                    print("  \(uri)")
                    print("  secret: \(secret)")
                } else if let sentTo = answer.smsSentTo {
                    print("A code was sent by SMS to the number ending in \(sentTo).")
                } else {
                    print("Hardware token registered; use its next code.")
                }
                print("Then run: sigillo activate complete --code \(self.code) --username NAME")
            } catch let error as CSCClientError {
                try? await client.shutdown()
                throw ValidationError("\(error)")
            }
        }
    }

    struct Complete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Choose username and password, prove the OTP device: the key pair and certificate are made.")

        @OptionGroup var connection: Connection

        @Option(help: "The activation code from the invitation.")
        var code: String

        @Option(help: "The username you choose.")
        var username: String

        @Option(help: "Key algorithm: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096.")
        var keyAlgorithm: String = "ecdsa-p256"

        @Flag(help: "Read the password, then the OTP, from standard input (one per line).")
        var passwordStdin = false

        func run() async throws {
            let password: String
            let otp: String
            if self.passwordStdin {
                guard let first = readLine(strippingNewline: true), let second = readLine(strippingNewline: true) else {
                    throw ValidationError("standard input must hold the password and the OTP, one per line")
                }
                (password, otp) = (first, second)
            } else {
                password = try Terminal.secret("New password (at least 10 characters): ")
                guard try Terminal.secret("Repeat the password: ") == password else { throw ValidationError("the passwords differ") }
                otp = try Terminal.secret("Code from your OTP device: ")
            }
            let client = try self.connection.client()
            do {
                let answer = try await client.completeActivation(code: self.code, username: self.username, password: password, otp: otp, keyAlgorithm: self.keyAlgorithm)
                try await client.shutdown()
                print("Activated. Credential \(answer.credentialID), certificate serial \(answer.serialNumber), valid until \(answer.notAfter).")
                if let userCode = answer.userCode {
                    print("")
                    print("Your user code (emergency code): \(userCode)")
                    print("WRITE IT DOWN AND KEEP IT APART FROM YOUR PHONE. It is shown only this once and cannot be recovered.")
                    print("With it you can suspend or revoke your signature yourself if you lose your OTP device.")
                }
            } catch let error as CSCClientError {
                try? await client.shutdown()
                throw ValidationError("\(error)")
            }
        }
    }
}
