import ArgumentParser
import Foundation
import PKCS11
import SigilloServer

struct HSM: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hsm",
        abstract: "Token set-up (development tokens; production tokens are initialised with their vendor's tools).",
        subcommands: [InitToken.self, CreateKEK.self]
    )

    struct CreateKEK: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create-kek",
            abstract: "Create the key-encryption key that wraps holder keys (AES-256, wrap/unwrap only) and its binding key in the token (idempotent).")

        @Option(help: "JSON configuration file (as for serve): the token, its PIN source and kekID.")
        var config: String?

        func run() async throws {
            let configuration = try ServerConfiguration.load(path: self.config)
            var tokenConfiguration = try configuration.tokenConfiguration()
            tokenConfiguration.sessions = 1
            let token = try Token.open(tokenConfiguration)
            defer { token.close() }
            guard try await token.supportsKeyWrapping() else {
                throw ValidationError("the token offers no mechanism to wrap keys (CKM_AES_KEY_WRAP_PAD or CKM_AES_CBC_PAD): use holderKeys: token")
            }
            if try await token.createKEK() {
                print("key-encryption key '\(configuration.kekID)' and binding key '\(Token.bindingKeyID(kekID: configuration.kekID))' created in the token")
            } else {
                print("key-encryption key '\(configuration.kekID)' already in the token (attributes checked)")
            }
        }
    }

    struct InitToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Initialise a token in a free slot and set its user PIN.")

        @Option(help: "PKCS#11 module.")
        var module: String = "/usr/lib/softhsm/libsofthsm2.so"

        @Option(help: "Token label.")
        var label: String

        @Option(help: "File holding the security officer PIN.")
        var soPinFile: String

        @Option(help: "File holding the user PIN.")
        var pinFile: String

        func run() async throws {
            let so = try Self.readSecret(self.soPinFile)
            let user = try Self.readSecret(self.pinFile)
            let module = try PKCS11Module.load(path: self.module)
            if try module.tokens().contains(where: { $0.label == self.label }) {
                print("token '\(self.label)' already exists")
                return
            }
            let slot = try module.initializeToken(label: self.label, soPIN: so, userPIN: user)
            print("token '\(self.label)' initialised in slot \(slot)")
        }

        static func readSecret(_ path: String) throws -> String {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("cannot read \(path)")
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { throw ValidationError("\(path) is empty") }
            return text
        }
    }
}
