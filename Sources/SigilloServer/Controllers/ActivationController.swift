import CSCProtocol
import Foundation
import Hummingbird
import PKCS11
import SigilloDomain

/// The holder's activation, as JSON on the public listener (the web page of a later issue uses the same service).
struct ActivationController: Sendable {
    let enrollment: Enrollment

    func addRoutes(to router: Router<SigilloContext>) {
        let group = router.group("activation/v1")
        group.post("begin", use: self.begin)
        group.post("complete", use: self.complete)
    }

    @Sendable func begin(_ request: Request, context: SigilloContext) async throws -> Response {
        let body = try await Self.decode(ActivationBeginRequest.self, request, context)
        let device = try Self.deviceChoice(kind: body.device, serial: body.serial, seedHex: body.seed, digits: body.digits)
        let challenge = try await self.enrollment.beginActivation(invitationCode: body.code, device: device)
        return try JSONResponse.make(Self.challengeAnswer(challenge))
    }

    /// The device a holder or operator chose: `totp` (app), `sms`, or `hotp` (hardware) with serial and seed.
    static func deviceChoice(kind: String, serial: String?, seedHex: String?, digits: Int? = nil) throws -> DeviceChoice {
        switch kind.lowercased() {
        case "totp", "app": return .totp(digits: digits ?? 6)
        case "sms": return .sms
        case "hotp", "hardware":
            guard let serial, !serial.isEmpty else { throw SigilloError(.invalidRequest, "a hardware token needs its serial number") }
            // Normally the seed is in the inventory the operator imported; a seed sheet given to the holder also works.
            guard let text = seedHex?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return .hardware(serial: serial) }
            guard let seed = Hex.bytes(text) ?? Base32.decode(text) else { throw SigilloError(.invalidRequest, "the token seed must be hex or base32") }
            return .hotp(serial: serial, secret: seed, digits: digits ?? 6)
        default:
            throw SigilloError(.invalidRequest, "device must be totp, hotp or sms")
        }
    }

    /// What the holder needs to prove a new device.
    static func challengeAnswer(_ challenge: ActivationChallenge) -> ActivationBeginResponse {
        ActivationBeginResponse(
            device: challenge.kind.rawValue, otpauthURI: challenge.otpauthURI, secret: challenge.secret.map { Base32.encode($0, padding: false) },
            smsSentTo: challenge.smsSentTo.map { "…" + $0 })
    }

    @Sendable func complete(_ request: Request, context: SigilloContext) async throws -> Response {
        let body = try await Self.decode(ActivationCompleteRequest.self, request, context)
        var algorithm = KeyAlgorithm.ecP256
        if let name = body.keyAlgorithm {
            guard let chosen = KeyAlgorithm(rawValue: name) else {
                throw SigilloError(.invalidRequest, "keyAlgorithm must be one of \(KeyAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            algorithm = chosen
        }
        let activated = try await self.enrollment.activate(invitationCode: body.code, username: body.username, password: body.password, otp: body.otp, keyAlgorithm: algorithm)
        let credential = activated.credential
        return try JSONResponse.make(ActivationCompleteResponse(
            credentialID: credential.id, serialNumber: credential.serialNumber, notAfter: ISO8601DateFormatter().string(from: credential.notAfter),
            certificate: Data(credential.certificateDER).base64EncodedString(), userCode: activated.userCode), status: .created)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: SigilloContext) async throws -> T {
        let buffer = try await request.body.collect(upTo: BodyLimits.holderForms)
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: buffer))
        } catch {
            throw SigilloError(.invalidRequest, "the request body is not valid JSON for this method")
        }
    }
}
