import CSCProtocol
import Foundation

/// The lenient CSC decoder (`CSCRequest` and the `decodeLenient…` helpers): a request body as the server decodes it
/// (`CSCController.handle`), then the accessors every method calls; and the same bytes as each response a client
/// decodes. Checked: what decodes survives encoding and decoding again unchanged, and the accessors agree with the
/// fields (digests are the base64 of `hashes` or `hash`, PIN and OTP from v1 fields before v2 `authData`).
enum CSCRequestTarget {
    static let target = FuzzTarget(name: "csc-request", summary: "CSC request and response bodies (lenient JSON decoding)") {
        { bytes in Self.run(Data(bytes)) }
    }

    static func run(_ data: Data) {
        if let request = try? JSONDecoder().decode(CSCRequest.self, from: data) {
            Self.checkRoundTrip(request)
            Self.checkAccessors(request)
        }
        Self.checkRoundTrip(CSCLoginResponse.self, data)
        Self.checkRoundTrip(CSCInfoResponse.self, data)
        Self.checkRoundTrip(CSCListResponse.self, data)
        Self.checkRoundTrip(CSCCredentialInfoResponse.self, data)
        Self.checkRoundTrip(CSCAuthorizeResponse.self, data)
        Self.checkRoundTrip(CSCSignHashResponse.self, data)
        Self.checkRoundTrip(CSCErrorResponse.self, data)
    }

    static func checkRoundTrip<T: Codable & Equatable>(_ value: T) {
        let encoded: Data
        do {
            encoded = try JSONEncoder().encode(value)
        } catch {
            FuzzCheck.fail("\(T.self) decoded but does not encode: \(error)")
        }
        guard let again = try? JSONDecoder().decode(T.self, from: encoded) else {
            FuzzCheck.fail("\(T.self) encodes to JSON it does not decode: \(String(decoding: encoded, as: UTF8.self))")
        }
        FuzzCheck.require(again == value, "\(T.self) changes through encoding: \(value) became \(again)")
    }

    static func checkRoundTrip<T: Codable & Equatable>(_ type: T.Type, _ data: Data) {
        if let value = try? JSONDecoder().decode(T.self, from: data) { Self.checkRoundTrip(value) }
    }

    static func checkAccessors(_ request: CSCRequest) {
        do {
            let digests = try request.digests()
            let texts = request.hashes ?? request.hash ?? []
            FuzzCheck.require(digests.count == texts.count && !digests.isEmpty, "digests() returned \(digests.count) for \(texts.count) hashes")
            for (digest, text) in zip(digests, texts) {
                FuzzCheck.require(Base64Text.decodeLenient(text) == digest, "digests() differs from the base64 of \(text.debugDescription)")
            }
        } catch is CSCRequestError {
            // refused: 400 invalid_request
        } catch {
            FuzzCheck.fail("digests() threw \(type(of: error)), not CSCRequestError: the server would answer 500")
        }
        let (pin, otp) = request.credentials()
        let items = request.authData ?? []
        let v2PIN = items.first { ["PIN", "PASSWORD"].contains($0.id.uppercased()) }?.value
        let v2OTP = items.first { $0.id.uppercased() == "OTP" }?.value
        FuzzCheck.require(pin == (request.PIN ?? v2PIN), "credentials() PIN does not come from PIN, then authData")
        FuzzCheck.require(otp == (request.OTP ?? v2OTP), "credentials() OTP does not come from OTP, then authData")
        if let id = try? request.requireCredentialID() {
            FuzzCheck.require(!id.isEmpty && id == request.credentialID, "requireCredentialID() returned \(id.debugDescription)")
        } else {
            FuzzCheck.require(request.credentialID?.isEmpty ?? true, "requireCredentialID() refused \(request.credentialID.debugDescription)")
        }
    }
}
