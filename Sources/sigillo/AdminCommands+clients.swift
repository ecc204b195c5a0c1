import ArgumentParser
import CSCProtocol
import Foundation

extension Admin {
    /// `sigillo admin clients add|list|remove`: the OAuth2 clients (wallets, signing applications) of the authorization server.
    struct Clients: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clients", abstract: "Register, list and remove the OAuth2 clients (wallets) of the authorization server.",
            subcommands: [Add.self, List.self, Remove.self])

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Register a client; prints its client_id and its secret (shown once, stored hashed), or none with --public-key.")
            @OptionGroup var connection: AdminConnection
            @Argument(help: "The name the holder's authorization page shows.") var name: String
            @Option(name: .customLong("redirect-uri"), parsing: .upToNextOption,
                    help: "Redirect URIs, matched exactly (https, a private-use scheme, or http to the loopback address).") var redirectURIs: [String]
            @Option(name: .customLong("public-key"),
                    help: "A PEM file with the client's EC P-256 public key: it authenticates with private_key_jwt (ES256), no secret.") var publicKey: String?

            func run() async throws {
                var pem: String?
                if let publicKey = self.publicKey {
                    guard let text = try? String(contentsOfFile: publicKey, encoding: .utf8) else { throw ValidationError("cannot read \(publicKey)") }
                    pem = text
                }
                let body = AdminAPI.RegisterClient(name: self.name, redirectURIs: self.redirectURIs, publicKeyPEM: pem)
                let data = try await self.connection.send(.POST, "clients", body: body)
                try self.connection.output(data, as: AdminAPI.RegisteredClient.self) { registered in
                    let credential = registered.clientSecret.map {
                        ["client_secret: \($0)", "The secret is shown only now: give it to the client's operator over a safe channel."]
                    } ?? ["authentication: private_key_jwt (ES256 assertions signed with the registered key)"]
                    return (["client_id: \(registered.client.clientID)", "name: \(registered.client.name)"]
                        + registered.client.redirectURIs.map { "redirect URI: \($0)" } + credential).joined(separator: "\n")
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the registered clients.")
            @OptionGroup var connection: AdminConnection

            func run() async throws {
                let data = try await self.connection.send(.GET, "clients")
                try self.connection.output(data, as: AdminAPI.ClientList.self) { list in
                    list.clients.isEmpty ? "no clients" : list.clients.map { "\($0.clientID)  \($0.name)  \($0.authentication)  \($0.redirectURIs.joined(separator: " "))  \($0.createdAt)" }
                        .joined(separator: "\n")
                }
            }
        }

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Remove a client: its tokens stop working at once.")
            @OptionGroup var connection: AdminConnection
            @Argument var clientID: String

            func run() async throws {
                let data = try await self.connection.send(.DELETE, "clients/\(try Admin.segment(self.clientID))")
                try self.connection.output(data, as: [String: String].self) { "client \($0["clientID"] ?? self.clientID) removed; its tokens are revoked" }
            }
        }
    }
}
