import Foundation
import SigilloDomain
import SigilloServer

/// The OAuth2 authorization request as `oauth2/authorize` (its query) and `oauth2/pushed_authorize` (its form) read it
/// (`AuthorizationRequestParser`): form decoding, one value per parameter, then the request of a registered client in
/// both CSC shapes (plain `credentialID`/`hashes`/`hashAlgorithmOID`/`numSignatures`, or RAR `authorization_details`).
/// Checked: whatever is wrong is an `OAuthError` with an RFC 6749 / 9396 / 9101 code, not any other error or a crash;
/// an accepted request is consistent (a 43-character S256 challenge, every digest as long as its algorithm's, one label
/// per digest, 1 ≤ digests ≤ numSignatures, a credential exactly for the credential scope).
enum OAuthRequestTarget {
    static let target = FuzzTarget(name: "oauth-request", summary: "OAuth2 authorization requests (query or form; PKCE, scope, RAR authorization_details)") {
        { bytes in Self.run(bytes) }
    }

    static let client = OAuthClient(id: "client-fuzz", name: "Fuzz", secretHash: nil, redirectURIs: ["https://wallet.example/cb"], createdAt: Date(timeIntervalSince1970: 0))
    static let codes: Set<String> = [
        "invalid_request", "unsupported_response_type", "invalid_scope", "invalid_authorization_details", "request_not_supported", "login_required",
    ]

    static func run(_ bytes: [UInt8]) {
        guard let pairs = AuthorizationRequestParser.formPairs(String(decoding: bytes, as: UTF8.self)) else { return }
        do {
            let parameters = try AuthorizationRequestParser.parameters(pairs)
            let request = try AuthorizationRequestParser.request(parameters, client: Self.client, redirectURI: Self.client.redirectURIs[0])
            FuzzCheck.require(request.codeChallenge.utf8.count == 43, "an accepted challenge is not 43 characters: \(request.codeChallenge.debugDescription)")
            FuzzCheck.require(request.clientID == Self.client.id && request.redirectURI == Self.client.redirectURIs[0], "the request changed client or redirect URI")
            FuzzCheck.require((request.scope == .credential) == (request.credential != nil), "scope \(request.scope) with credential \(String(describing: request.credential))")
            if let scope = request.credential {
                FuzzCheck.require(!scope.hashes.isEmpty && scope.hashes.count <= scope.numSignatures && scope.hashes.count <= AuthorizationRequestParser.maxHashes,
                                  "\(scope.hashes.count) hashes for numSignatures \(scope.numSignatures)")
                FuzzCheck.require(scope.hashes.allSatisfy { $0.count == scope.hashAlgorithm.digestLength }, "a digest is not of \(scope.hashAlgorithm)")
                FuzzCheck.require(scope.labels.count == scope.hashes.count, "\(scope.labels.count) labels for \(scope.hashes.count) hashes")
                FuzzCheck.require(!scope.credentialID.isEmpty, "an empty credentialID was accepted")
            }
        } catch let error as OAuthError {
            FuzzCheck.require(Self.codes.contains(error.code) && error.status == 400, "unexpected error \(error.code) (\(error.status))")
        } catch {
            FuzzCheck.fail("not an OAuthError: \(error)")
        }
    }
}
