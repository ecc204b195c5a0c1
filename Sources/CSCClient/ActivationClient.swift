import CSCProtocol
import Foundation

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

extension CSCClient {
    /// The holder's own view of their account (username and password).
    public func status(username: String, password: String) async throws -> HolderStatusResponse {
        try await self.call("status", HolderLoginRequest(username: username, password: password), authorization: nil, api: "selfservice/v1")
    }
}
