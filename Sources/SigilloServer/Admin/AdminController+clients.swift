import CSCProtocol
import Foundation
import Hummingbird
import SigilloDomain

/// The OAuth2 client registry (`sigillo admin clients add|list|remove`).
extension AdminController {
    func addClientRoutes(to group: RouterGroup<AdminContext>) {
        group.post("clients") { request, context in
            let body = try await Self.decode(AdminAPI.RegisterClient.self, request, context)
            let (client, secret) = try await self.oauth.registerClient(
                name: body.name, redirectURIs: body.redirectURIs, publicKeyPEM: body.publicKeyPEM, actor: try context.requireOperator())
            return try Self.json(AdminAPI.RegisteredClient(client: Self.view(client), clientSecret: secret), status: .created)
        }
        group.get("clients") { _, context in
            try Self.json(AdminAPI.ClientList(clients: try await self.oauth.clients(actor: try context.requireOperator()).map(Self.view)))
        }
        group.delete("clients/:id") { _, context in
            let id = try context.parameters.require("id")
            try await self.oauth.removeClient(id: id, actor: try context.requireOperator())
            return try Self.json(["clientID": id, "status": "removed"])
        }
    }

    static func view(_ client: OAuthClient) -> AdminAPI.ClientView {
        AdminAPI.ClientView(clientID: client.id, name: client.name, redirectURIs: client.redirectURIs, createdAt: AdminAPI.time(client.createdAt),
                            authentication: client.publicKeyPEM == nil ? "client_secret" : "private_key_jwt")
    }
}
