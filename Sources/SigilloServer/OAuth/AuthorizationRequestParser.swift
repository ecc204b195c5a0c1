import CSCProtocol
import Foundation
import PKCS11
import SigilloDomain

/// Reads an OAuth2 authorization request (the query of `oauth2/authorize` or the form of `oauth2/pushed_authorize`) in
/// both shapes CSC v2 wallets send: `scope=service`; `scope=credential` with `credentialID`, `numSignatures`, `hashes`
/// (comma-separated base64url) and `hashAlgorithmOID`; or RAR `authorization_details` (RFC 9396) of type `credential`
/// with `documentDigests: [{hash, label}]`. PKCE S256 is required.
package enum AuthorizationRequestParser {
    /// The `authorization_details` types taken for a CSC credential authorization (the CSC v2 name, and the URI the EUDI
    /// libraries send).
    package static let credentialTypes: Set<String> = ["credential", "https://cloudsignatureconsortium.org/2025/credential"]
    /// The most digests one authorization carries (each one is shown to the holder).
    package static let maxHashes = 1000

    /// Parameter pairs as a dictionary; a parameter given twice is refused (RFC 6749 §3.1).
    package static func parameters(_ pairs: [(String, String)]) throws -> [String: String] {
        var parameters: [String: String] = [:]
        for (name, value) in pairs {
            guard parameters.updateValue(value, forKey: name) == nil else { throw OAuthError.invalidRequest("parameter \(name) is given more than once") }
        }
        return parameters
    }

    /// The pairs of an `application/x-www-form-urlencoded` text; nil when malformed.
    package static func formPairs(_ text: String) -> [(String, String)]? {
        var pairs: [(String, String)] = []
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (part: Substring) -> String? in String(part).replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let name = parts.first.flatMap(decode), let value = parts.count > 1 ? decode(parts[1]) : "" else { return nil }
            pairs.append((name, value))
        }
        return pairs
    }

    /// The request of `client` to be answered at `redirectURI` (both already checked).
    ///
    /// - Throws: `OAuthError` (`invalid_request`, `unsupported_response_type`, `invalid_scope`,
    ///   `invalid_authorization_details`, `request_not_supported`, `login_required`), to be sent to the redirect URI.
    package static func request(_ parameters: [String: String], client: OAuthClient, redirectURI: String) throws -> AuthorizationRequest {
        guard parameters["request"] == nil else { throw OAuthError("request_not_supported", "request objects are not supported: push the request (PAR) instead") }
        guard parameters["response_type"] == "code" else { throw OAuthError("unsupported_response_type", "response_type must be code") }
        guard let challenge = parameters["code_challenge"] else {
            throw OAuthError.invalidRequest("PKCE is required: code_challenge with code_challenge_method=S256")
        }
        guard parameters["code_challenge_method"] == "S256" else { throw OAuthError.invalidRequest("code_challenge_method must be S256") }
        guard challenge.utf8.count == 43, challenge.utf8.allSatisfy(Self.isBase64URL) else {
            throw OAuthError.invalidRequest("code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)")
        }
        if let prompt = parameters["prompt"], prompt.split(separator: " ").contains("none") {
            throw OAuthError("login_required", "the holder always signs in on the authorization page (prompt=none is not possible)")
        }
        if let state = parameters["state"], state.utf8.count > 1024 { throw OAuthError.invalidRequest("state is longer than 1024 bytes") }
        let scopes = Set((parameters["scope"] ?? "").split(separator: " ").map(String.init))
        var request = AuthorizationRequest(clientID: client.id, redirectURI: redirectURI, state: parameters["state"], codeChallenge: challenge, scope: .service, credential: nil)
        if let details = parameters["authorization_details"] {
            guard scopes.isSubset(of: ["credential"]) else { throw OAuthError.invalidScope("authorization_details go with scope credential (or no scope)") }
            let (type, credential) = try self.authorizationDetails(details)
            request.scope = .credential
            request.credential = credential
            request.authorizationDetailsType = type
            return request
        }
        switch scopes {
        case ["service"]:
            return request
        case ["credential"]:
            guard let id = parameters["credentialID"], !id.isEmpty else {
                throw OAuthError.invalidRequest(parameters["signatureQualifier"] != nil ? "signatureQualifier is not supported: name the credentialID" : "credentialID is missing")
            }
            let hashes = (parameters["hashes"] ?? "").split(separator: ",").map { String($0) }
            request.scope = .credential
            request.credential = try self.credential(id: id, numSignatures: parameters["numSignatures"], hashes: hashes, labels: hashes.map { _ in nil },
                                                     hashAlgorithmOID: parameters["hashAlgorithmOID"], error: OAuthError.invalidRequest)
            return request
        default:
            throw OAuthError.invalidScope("scope is service or credential (or authorization_details of type credential)")
        }
    }

    /// One `authorization_details` entry of type `credential`.
    private static func authorizationDetails(_ text: String) throws -> (String, CredentialScope) {
        let invalid = { (message: String) in OAuthError("invalid_authorization_details", message) }
        guard let array = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [Any], array.count == 1, let detail = array[0] as? [String: Any] else {
            throw invalid("authorization_details must be a JSON array of one object")
        }
        guard let type = detail["type"] as? String, self.credentialTypes.contains(type) else {
            throw invalid("the authorization_details type must be credential")
        }
        guard let id = detail["credentialID"] as? String, !id.isEmpty else {
            throw invalid(detail["signatureQualifier"] != nil ? "signatureQualifier is not supported: name the credentialID" : "credentialID is missing")
        }
        guard let digests = detail["documentDigests"] as? [[String: Any]] else { throw invalid("documentDigests must be an array of {hash, label}") }
        var hashes: [String] = []
        var labels: [String?] = []
        for digest in digests {
            guard let hash = digest["hash"] as? String else { throw invalid("every documentDigests entry needs its hash") }
            hashes.append(hash)
            labels.append(digest["label"] as? String)
        }
        let numSignatures: String?
        switch detail["numSignatures"] {
        case nil: numSignatures = nil
        case let number as Int: numSignatures = String(number)
        case let text as String: numSignatures = text
        default: throw invalid("numSignatures must be a number")
        }
        return (type, try self.credential(id: id, numSignatures: numSignatures, hashes: hashes, labels: labels,
                                          hashAlgorithmOID: detail["hashAlgorithmOID"] as? String, error: invalid))
    }

    private static func credential(id: String, numSignatures: String?, hashes texts: [String], labels: [String?], hashAlgorithmOID: String?,
                                   error: (String) -> OAuthError) throws -> CredentialScope {
        guard !texts.isEmpty, texts.count <= self.maxHashes else { throw error("give 1 to \(self.maxHashes) hashes to sign") }
        guard let oid = hashAlgorithmOID, !oid.isEmpty else { throw error("hashAlgorithmOID is missing") }
        guard let algorithm = OID.hash(oid) else { throw error("hashAlgorithmOID \(oid) is not SHA-256, SHA-384 or SHA-512") }
        var hashes: [[UInt8]] = []
        for text in texts {
            guard let hash = Base64Text.decodeLenient(text), hash.count == algorithm.digestLength else {
                throw error("every hash must be a base64url \(algorithm.rawValue) digest of \(algorithm.digestLength) bytes")
            }
            hashes.append(hash)
        }
        let count: Int
        if let numSignatures {
            guard let number = Int(numSignatures), number >= 1 else { throw error("numSignatures must be a positive number") }
            count = number
        } else {
            count = hashes.count
        }
        guard hashes.count <= count else { throw error("more hashes (\(hashes.count)) than numSignatures (\(count))") }
        let cleaned = labels.map { label in
            label.map { String(String($0.unicodeScalars.filter { !CharacterSet.controlCharacters.contains($0) }).prefix(200)) }
        }
        return CredentialScope(credentialID: id, numSignatures: count, hashAlgorithm: algorithm, hashes: hashes, labels: cleaned)
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D || byte == 0x5F
    }
}
