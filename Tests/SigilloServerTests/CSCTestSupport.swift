import AsyncHTTPClient
import Foundation
import NIOCore
import PKCS11
import CSCClient
import CSCProtocol
import SigilloDomain
import SigilloServer
import SigilloSQLite
import SigilloTestSupport
import Testing

/// A CSC response: status and decoded JSON object (empty for 204).
struct CSCResponse {
    let status: Int
    let json: [String: Any]
    var error: String? { self.json["error"] as? String }
}

extension LiveServer {
    /// POSTs `body` (a JSON object, or raw text) to `path` with optional bearer or basic credentials.
    func post(_ path: String, _ body: [String: Any] = [:], raw: String? = nil, bearer: String? = nil, basic: (String, String)? = nil) async throws -> CSCResponse {
        var request = HTTPClientRequest(url: self.baseURL + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        if let basic { request.headers.add(name: "Authorization", value: "Basic " + Data("\(basic.0):\(basic.1)".utf8).base64EncodedString()) }
        let data = try raw.map { Data($0.utf8) } ?? JSONSerialization.data(withJSONObject: body)
        request.body = .bytes(ByteBuffer(bytes: data))
        let response = try await self.client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 1 << 22)
        let json = bytes.readableBytes == 0 ? [:] : (try JSONSerialization.jsonObject(with: Data(buffer: bytes)) as? [String: Any] ?? [:])
        return CSCResponse(status: Int(response.status.code), json: json)
    }

    struct Account {
        let holder: Holder
        let credential: Credential
        let username: String
        let password: String
        let kind: OTPKind
        let secret: [UInt8]
        /// HOTP: the next counter the device will show.
        var counter: UInt64
        /// TOTP: the app, which remembers the step it last showed.
        var totp: TOTPDevice

        /// The next OTP: HOTP in sequence; TOTP from the app (after the step last used, valid for 30 s at least).
        mutating func nextOTP() async -> String {
            if self.kind == .hotp {
                defer { self.counter += 1 }
                return HOTP.code(secret: self.secret, counter: self.counter)
            }
            return await self.totp.next()
        }
    }

    /// Creates and activates a holder through the domain service (the operator and activation steps).
    func activate(name: String = "Mario", keyAlgorithm: KeyAlgorithm = .ecP256, device: OTPKind = .hotp) async throws -> Account {
        try await Self.activate(self.services.domain, name: name, keyAlgorithm: keyAlgorithm, device: device) { try self.lastSMSCode() }
    }

    /// `activate` on a domain without a listener (router tests); `smsCode` reads the code an SMS activation was sent.
    static func activate(_ service: Domain, name: String = "Mario", keyAlgorithm: KeyAlgorithm = .ecP256, device: OTPKind = .hotp,
                         smsCode: () throws -> String = { throw ConfigurationError("no SMS outbox here") }) async throws -> Account {
        let unique = UUID().uuidString.prefix(8).lowercased()
        let holder = try await service.enrollment.createHolder(
            givenName: name, surname: "Rossi", fiscalCode: TestData.fiscalCode(), email: "\(name.lowercased()).\(unique)@example.it",
            mobile: "+39333\(Int.random(in: 1_000_000...9_999_999))", actor: "operator:test", recognized: true)
        let invitation = try await service.enrollment.invite(holderID: holder.id, actor: "operator:test")
        let username = "\(name.lowercased())-\(unique)"
        let password = "correct horse battery"
        if device == .hotp {
            let secret = TOTP.generateSecret()
            _ = try await service.enrollment.beginActivation(invitationCode: invitation.code, device: .hotp(serial: "HW-\(unique)", secret: secret))
            let credential = try await service.enrollment.completeActivation(invitationCode: invitation.code, username: username, password: password, otp: HOTP.code(secret: secret, counter: 0), keyAlgorithm: keyAlgorithm)
            return Account(holder: holder, credential: credential, username: username, password: password, kind: .hotp, secret: secret, counter: 1, totp: TOTPDevice(secret: []))
        }
        if device == .sms {
            _ = try await service.enrollment.beginActivation(invitationCode: invitation.code, device: .sms)
            let credential = try await service.enrollment.completeActivation(invitationCode: invitation.code, username: username, password: password, otp: try smsCode(), keyAlgorithm: keyAlgorithm)
            return Account(holder: holder, credential: credential, username: username, password: password, kind: .sms, secret: [], counter: 0, totp: TOTPDevice(secret: []))
        }
        let challenge = try await service.enrollment.beginActivation(invitationCode: invitation.code, device: .totp())
        let secret = challenge.secret!
        // On the server's clock: a test clock stands still while a busy machine takes its time.
        var totp = TOTPDevice(secret: secret, clock: service.clock)
        let credential = try await service.enrollment.completeActivation(
            invitationCode: invitation.code, username: username, password: password, otp: await totp.next(), keyAlgorithm: keyAlgorithm)
        return Account(holder: holder, credential: credential, username: username, password: password, kind: .totp, secret: secret, counter: 0, totp: totp)
    }

    /// The code in the last SMS the development notifier wrote to the outbox file.
    func lastSMSCode() throws -> String {
        try #require(try self.lastSMS(1).first).code
    }

    /// The last `count` SMS the development notifier wrote to the outbox file, oldest first: recipient and code.
    func lastSMS(_ count: Int) throws -> [(recipient: String, code: String)] {
        try self.smsMessages().suffix(count).map { message in
            (try #require(message["recipient"] as? String), try #require(CapturingNotifier.code(in: message["body"] as? String ?? "")))
        }
    }

    /// Every SMS the development notifier wrote to the outbox file (JSON lines), oldest first.
    func smsMessages() throws -> [[String: Any]] {
        let path = self.directory.appendingPathComponent("outbox.jsonl").path
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        return try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.filter { $0["channel"] as? String == "sms" }
    }
}

func b64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
func b64url(_ bytes: [UInt8]) -> String {
    b64(bytes).replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
}
