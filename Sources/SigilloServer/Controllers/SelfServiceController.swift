import Foundation
import Hummingbird
import SigilloDomain

/// The holder's own emergency actions with the user code (lost phone or token): suspend or revoke every
/// credential at once, without password or OTP. A lost user code cannot be recovered: the holder can still revoke
/// with username, password and OTP (or an operator revokes), and a new order follows.
struct SelfServiceController: Sendable {
    let authentication: Authentication
    let recovery: Recovery
    let lifecycle: CredentialLifecycle

    /// What the emergency action changed.
    struct Changed: Encodable {
        var status: String
        var credentials: [String]
    }

    struct Body: Decodable {
        var username: String
        var userCode: String?
        var password: String?
        var otp: String?
        var reason: String?
    }

    func addRoutes(to router: Router<SigilloContext>) {
        let group = router.group("selfservice/v1")
        group.post("suspend") { request, context in try await self.act(request, context, revoke: false) }
        group.post("revoke") { request, context in try await self.act(request, context, revoke: true) }
    }

    private func act(_ request: Request, _ context: SigilloContext, revoke: Bool) async throws -> Response {
        let body = try await ActivationController.decode(Body.self, request, context)
        var reason = RevocationReason.unspecified
        if let name = body.reason {
            // A holder may state these; the others are for operators (RFC 5280).
            guard let chosen = RevocationReason(rawValue: name), [.unspecified, .keyCompromise, .affiliationChanged, .cessationOfOperation].contains(chosen) else {
                throw SigilloError(.invalidRequest, "reason must be unspecified, keyCompromise, affiliationChanged or cessationOfOperation")
            }
            reason = chosen
        }
        let holder: Holder
        if let userCode = body.userCode {
            holder = try await self.authentication.checkUserCode(username: body.username, userCode: userCode)
        } else if revoke, let password = body.password, let otp = body.otp {
            holder = try await self.recovery.authenticateForRevocation(username: body.username, password: password, otp: otp)
        } else {
            throw SigilloError(.invalidRequest, revoke ? "give the user code, or password and OTP" : "give the user code")
        }
        let actor = "holder:\(holder.id)"
        let changed = revoke
            ? try await self.lifecycle.revokeAll(holderID: holder.id, reason: reason, actor: actor)
            : try await self.lifecycle.suspendAll(holderID: holder.id, actor: actor)
        return try JSONResponse.make(Changed(status: revoke ? "revoked" : "suspended", credentials: changed))
    }
}
