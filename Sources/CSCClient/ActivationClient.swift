import CSCProtocol
import Foundation

/// What `activation/v1/begin` answers: for an app, the secret and its `otpauth://` URI.
public struct ActivationBeginResponse: Codable, Sendable {
    public var device: String
    public var otpauthURI: String?
    public var secret: String?
    public var smsSentTo: String?
}

/// What `activation/v1/complete` answers: the new credential.
public struct ActivationCompleteResponse: Codable, Sendable {
    public var credentialID: String
    public var serialNumber: String
    public var notAfter: String
    public var certificate: String
    /// The emergency code, shown once.
    public var userCode: String?
}

struct ActivationBeginRequest: Codable, Sendable {
    var code: String
    var device: String
    var serial: String?
    var seed: String?
}

struct ActivationCompleteRequest: Codable, Sendable {
    var code: String
    var username: String
    var password: String
    var otp: String
    var keyAlgorithm: String?
}

extension CSCClient {
    /// Starts an activation with the invitation code; `device` is `totp`, `hotp` (with `serial` and hex `seed`) or `sms`.
    public func beginActivation(code: String, device: String, serial: String? = nil, seed: String? = nil) async throws -> ActivationBeginResponse {
        try await self.call("begin", ActivationBeginRequest(code: code, device: device, serial: serial, seed: seed), authorization: nil, api: "activation/v1")
    }

    /// Completes it: password, a code from the device, the key algorithm.
    public func completeActivation(code: String, username: String, password: String, otp: String, keyAlgorithm: String?) async throws -> ActivationCompleteResponse {
        try await self.call("complete", ActivationCompleteRequest(code: code, username: username, password: password, otp: otp, keyAlgorithm: keyAlgorithm), authorization: nil, api: "activation/v1")
    }
}

/// A holder's state and credentials (`selfservice/v1/status`).
public struct HolderStatusResponse: Codable, Sendable {
    public struct CredentialStatus: Codable, Sendable {
        public var credentialID: String
        public var status: String
        public var serialNumber: String
        public var notBefore: String
        public var notAfter: String
        public var revocationReason: String?
    }

    public var state: String
    public var description: String
    public var username: String
    public var credentials: [CredentialStatus]
}

struct StatusRequest: Codable, Sendable {
    var username: String
    var password: String
}

extension CSCClient {
    /// The holder's own view of their account (username and password).
    public func status(username: String, password: String) async throws -> HolderStatusResponse {
        try await self.call("status", StatusRequest(username: username, password: password), authorization: nil, api: "selfservice/v1")
    }
}
