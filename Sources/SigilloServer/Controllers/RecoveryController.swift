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
        var device: String
        var serial: String?
        var seed: String?
        var digits: Int?
    }
    struct DeviceComplete: Decodable {
        var token: String
        var otp: String
    }
    struct Login: Decodable {
        var username: String
        var password: String
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
    static let accepted = CSCController.json(.object(["status": .string("accepted"), "message": .string("if the account exists, a mail is on its way to the registered address")]), status: .accepted)

    func addRoutes(to router: Router<SigilloContext>) {
        let group = router.group("recovery/v1")
        group.post("username") { request, context in
            try await self.recovery.remindUsername(email: try await Self.decode(Email.self, request, context).email)
            return Self.accepted
        }
        group.post("password/request") { request, context in
            try await self.recovery.requestPasswordReset(usernameOrEmail: try await Self.decode(Account.self, request, context).account)
            return Self.accepted
        }
        group.post("password/sendOTP") { request, context in
            let link = try await self.recovery.openPasswordReset(code: try await Self.decode(ResetCode.self, request, context).code, sendSMS: true)
            return CSCController.json(.object(["device": .string(link.otpKind.rawValue)]))
        }
        group.post("password/reset") { request, context in
            let body = try await Self.decode(Reset.self, request, context)
            try await self.recovery.resetPassword(code: body.code, otp: body.otp, newPassword: body.newPassword)
            return CSCController.json(.object(["status": .string("password changed"), "sessionsEnded": .bool(true)]))
        }
        group.post("device/begin") { request, context in
            let body = try await Self.decode(DeviceBegin.self, request, context)
            let device = try ActivationController.deviceChoice(kind: body.device, serial: body.serial, seedHex: body.seed, digits: body.digits)
            let rebind = try await self.recovery.beginDeviceRebind(username: body.username, password: body.password, userCode: body.userCode, device: device)
            var answer = ActivationController.challengeJSON(rebind.challenge)
            answer["token"] = .string(rebind.token)
            return CSCController.json(.object(answer), status: .created)
        }
        group.post("device/complete") { request, context in
            let body = try await Self.decode(DeviceComplete.self, request, context)
            try await self.recovery.completeDeviceRebind(token: body.token, otp: body.otp)
            return CSCController.json(.object(["status": .string("device bound")]))
        }
        group.post("mobile/begin") { request, context in
            let body = try await Self.decode(MobileBegin.self, request, context)
            let started = try await self.recovery.beginMobileChange(username: body.username, password: body.password, newMobile: body.mobile)
            return CSCController.json(.object(["smsSentTo": .string("…" + started.oldNumberEnd), "newNumberSentTo": .string("…" + started.newNumberEnd)]))
        }
        group.post("mobile/complete") { request, context in
            let body = try await Self.decode(MobileComplete.self, request, context)
            let holder = try await self.recovery.completeMobileChange(username: body.username, password: body.password, oldNumberCode: body.otp, newNumberCode: body.newNumberOtp)
            return CSCController.json(.object(["status": .string("mobile changed"), "mobile": .string("…" + holder.mobile.suffix(3))]))
        }

        let selfService = router.group("selfservice/v1")
        selfService.post("status") { request, context in
            let body = try await Self.decode(Login.self, request, context)
            let status = try await self.recovery.status(username: body.username, password: body.password)
            return CSCController.json(Self.statusJSON(status.holder, status.credentials))
        }
        selfService.post("renew") { request, context in
            let body = try await Self.decode(LoginOTP.self, request, context)
            let credential = try await self.lifecycle.renew(username: body.username, password: body.password, otp: body.otp)
            return CSCController.json(Self.credentialJSON(credential), status: .created)
        }
    }

    static func statusJSON(_ holder: Holder, _ credentials: [Credential]) -> JSONValue {
        .object([
            "state": .string(holder.state.rawValue),
            "description": .string(holder.state.label),
            "username": .string(holder.username ?? ""),
            "credentials": .array(credentials.map(Self.credentialJSON)),
        ])
    }

    static func credentialJSON(_ credential: Credential) -> JSONValue {
        var fields: [String: JSONValue] = [
            "credentialID": .string(credential.id),
            "status": .string(credential.status.rawValue),
            "serialNumber": .string(credential.serialNumber),
            "notBefore": .string(ISO8601DateFormatter().string(from: credential.notBefore)),
            "notAfter": .string(ISO8601DateFormatter().string(from: credential.notAfter)),
        ]
        if let reason = credential.revocationReason { fields["revocationReason"] = .string(reason.rawValue) }
        return .object(fields)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: SigilloContext) async throws -> T {
        try await ActivationController.decode(type, request, context)
    }
}
