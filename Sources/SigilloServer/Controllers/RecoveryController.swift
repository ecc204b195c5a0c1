import CSCProtocol
import Foundation
import Hummingbird
import SigilloDomain

/// Lost credentials, the holder's status and renewal, as JSON on the public listener (`/recovery/v1/...`,
/// `/selfservice/v1/status|renew`). The web pages (`WebController`) call the same service functions.
struct RecoveryController: Sendable {
    let recovery: Recovery
    let lifecycle: CredentialLifecycle

    struct Email: Decodable { var email: String }
    struct Account: Decodable { var account: String }
    struct ResetCode: Decodable { var code: String }
    struct Reset: Decodable {
        var code: String
        var otp: String
        var newPassword: String
    }
    struct DeviceBegin: Decodable {
        var username: String
        var password: String
        var userCode: String
    }
    /// The mailed link's code and the new device (an app, a hardware token from the inventory, or SMS).
    struct DeviceConfirm: Decodable {
        var code: String
        var device: String
        var serial: String?
        var digits: Int?
    }
    struct SelfServiceCode: Decodable {
        var username: String
        var password: String
        /// `revoke` or `renew`.
        var purpose: String
    }
    struct DeviceComplete: Decodable {
        var token: String
        var otp: String
    }
    struct LoginOTP: Decodable {
        var username: String
        var password: String
        var otp: String
    }
    struct MobileBegin: Decodable {
        var username: String
        var password: String
        var mobile: String
    }
    struct MobileComplete: Decodable {
        var username: String
        var password: String
        /// The code sent to the old number.
        var otp: String
        /// The code sent to the new number.
        var newNumberOtp: String
    }

    /// Same answer whether or not the account exists.
    static var accepted: Response {
        get throws { try JSONResponse.make(Outcome(status: "accepted", message: "if the account exists, a mail is on its way to the registered address"), status: .accepted) }
    }

    /// The answer of a route that only reports what happened.
    struct Outcome: Encodable {
        var status: String
        var message: String? = nil
        var sessionsEnded: Bool? = nil
        var mobile: String? = nil
    }

    /// A started device replacement: the new device's challenge and the token that completes it.
    struct RebindStarted: Encodable {
        var token: String
        var challenge: ActivationBeginResponse

        func encode(to encoder: any Encoder) throws {
            try self.challenge.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(self.token, forKey: .token)
        }

        enum CodingKeys: String, CodingKey { case token }
    }

    /// Where the two codes of a mobile change went.
    struct MobileCodesSent: Encodable {
        var smsSentTo: String
        var newNumberSentTo: String
    }

    func addRoutes(to router: Router<SigilloContext>) {
        let group = router.group("recovery/v1")
        group.post("username") { request, context in
            try await self.recovery.remindUsername(email: try await Self.decode(Email.self, request, context).email)
            return try Self.accepted
        }
        group.post("password/request") { request, context in
            try await self.recovery.requestPasswordReset(usernameOrEmail: try await Self.decode(Account.self, request, context).account)
            return try Self.accepted
        }
        group.post("password/sendOTP") { request, context in
            let link = try await self.recovery.sendPasswordResetCode(code: try await Self.decode(ResetCode.self, request, context).code)
            return try JSONResponse.make(ActivationBeginResponse(device: link.otpKind.rawValue))
        }
        group.post("password/reset") { request, context in
            let body = try await Self.decode(Reset.self, request, context)
            try await self.recovery.resetPassword(code: body.code, otp: body.otp, newPassword: body.newPassword)
            return try JSONResponse.make(Outcome(status: "password changed", sessionsEnded: true))
        }
        group.post("device/begin") { request, context in
            let body = try await Self.decode(DeviceBegin.self, request, context)
            let mailedTo = try await self.recovery.beginDeviceRebind(username: body.username, password: body.password, userCode: body.userCode)
            return try JSONResponse.make(Outcome(status: "confirmation mailed", message: "open the link mailed to \(mailedTo) to choose the new device"), status: .accepted)
        }
        group.post("device/confirm") { request, context in
            let body = try await Self.decode(DeviceConfirm.self, request, context)
            let device = try ActivationController.deviceChoice(kind: body.device, serial: body.serial, seedHex: nil, digits: body.digits)
            let rebind = try await self.recovery.confirmDeviceRebind(token: body.code, device: device)
            return try JSONResponse.make(RebindStarted(token: rebind.token, challenge: ActivationController.challengeAnswer(rebind.challenge)), status: .created)
        }
        group.post("device/complete") { request, context in
            let body = try await Self.decode(DeviceComplete.self, request, context)
            try await self.recovery.completeDeviceRebind(token: body.token, otp: body.otp)
            return try JSONResponse.make(Outcome(status: "device bound"))
        }
        group.post("mobile/begin") { request, context in
            let body = try await Self.decode(MobileBegin.self, request, context)
            let started = try await self.recovery.beginMobileChange(username: body.username, password: body.password, newMobile: body.mobile)
            return try JSONResponse.make(MobileCodesSent(smsSentTo: "…" + started.oldNumberEnd, newNumberSentTo: "…" + started.newNumberEnd))
        }
        group.post("mobile/complete") { request, context in
            let body = try await Self.decode(MobileComplete.self, request, context)
            let holder = try await self.recovery.completeMobileChange(username: body.username, password: body.password, oldNumberCode: body.otp, newNumberCode: body.newNumberOtp)
            return try JSONResponse.make(Outcome(status: "mobile changed", mobile: "…" + holder.mobile.suffix(3)))
        }

        let selfService = router.group("selfservice/v1")
        selfService.post("status") { request, context in
            let body = try await Self.decode(HolderLoginRequest.self, request, context)
            let status = try await self.recovery.status(username: body.username, password: body.password)
            return try JSONResponse.make(Self.statusAnswer(status.holder, status.credentials))
        }
        selfService.post("sendOTP") { request, context in
            let body = try await Self.decode(SelfServiceCode.self, request, context)
            let purpose: SMSPurpose? = switch body.purpose { case "revoke": .revocation; case "renew": .renewal; default: nil }
            guard let purpose else { throw SigilloError(.invalidRequest, "purpose is revoke or renew") }
            try await self.recovery.sendSelfServiceCode(username: body.username, password: body.password, purpose: purpose)
            return try JSONResponse.make(Outcome(status: "sent"))
        }
        selfService.post("renew") { request, context in
            let body = try await Self.decode(LoginOTP.self, request, context)
            let credential = try await self.lifecycle.renew(username: body.username, password: body.password, otp: body.otp)
            return try JSONResponse.make(Self.credentialView(credential), status: .created)
        }
    }

    static func statusAnswer(_ holder: Holder, _ credentials: [Credential]) -> HolderStatusResponse {
        HolderStatusResponse(state: holder.state.rawValue, description: holder.state.label, username: holder.username ?? "", credentials: credentials.map(Self.credentialView))
    }

    static func credentialView(_ credential: Credential) -> CredentialStatusView {
        let iso = ISO8601DateFormatter()
        return CredentialStatusView(
            credentialID: credential.id, status: credential.status.rawValue, serialNumber: credential.serialNumber,
            notBefore: iso.string(from: credential.notBefore), notAfter: iso.string(from: credential.notAfter),
            revocationReason: credential.revocationReason?.rawValue)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: SigilloContext) async throws -> T {
        try await ActivationController.decode(type, request, context)
    }
}
