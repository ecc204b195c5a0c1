import Crypto
import Foundation

/// A `private_key_jwt` client assertion (RFC 7523 §2.2, OpenID Connect Core §9): a compact JWS signed ES256 with the
/// client's registered EC P-256 key, whose claims say who (`iss` = `sub` = the client id), for whom (`aud`: this
/// authorization server), until when (`exp`) and once (`jti`).
struct ClientAssertion {
    static let type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    /// The longest an assertion may live (Authlib, for one, signs them for an hour), and the clock skew allowed.
    static let maxLifetime: TimeInterval = 3600
    static let skew: TimeInterval = 60

    let algorithm: String
    let claims: [String: Any]
    let signingInput: Data
    let signature: Data

    /// - Throws: `invalid_client` when it is not a compact JWS with JSON header and claims.
    init(_ jwt: String) throws {
        let parts = jwt.split(separator: ".", omittingEmptySubsequences: false)
        guard jwt.utf8.count <= 8192, parts.count == 3, let header = Self.json(parts[0]), let claims = Self.json(parts[1]),
              let signature = Self.base64URL(parts[2]), let algorithm = header["alg"] as? String else {
            throw OAuthError.invalidClient("client_assertion is not a signed JWT")
        }
        self.algorithm = algorithm
        self.claims = claims
        self.signingInput = Data("\(parts[0]).\(parts[1])".utf8)
        self.signature = signature
    }

    var issuer: String? { self.claims["iss"] as? String }

    /// Checks signature and claims for `client`, at `now`, for one of `audiences`.
    ///
    /// - Returns: the `jti` and when the assertion expires (to be remembered until then).
    /// - Throws: `invalid_client` saying what is wrong.
    func verify(client: OAuthClient, audiences: [String], now: Date) throws -> (jti: String, expiresAt: Date) {
        guard let pem = client.publicKeyPEM, let key = try? P256.Signing.PublicKey(pemRepresentation: pem) else {
            throw OAuthError.invalidClient("this client authenticates with its secret, not private_key_jwt")
        }
        guard self.algorithm == "ES256" else { throw OAuthError.invalidClient("client_assertion must be signed ES256") }
        guard let signature = try? P256.Signing.ECDSASignature(rawRepresentation: self.signature), key.isValidSignature(signature, for: self.signingInput) else {
            throw OAuthError.invalidClient("the client_assertion signature does not verify with the client's key")
        }
        guard self.issuer == client.id, self.claims["sub"] as? String == client.id else {
            throw OAuthError.invalidClient("the client_assertion's iss and sub must be the client_id")
        }
        let audience = (self.claims["aud"] as? String).map { [$0] } ?? (self.claims["aud"] as? [String]) ?? []
        guard !Set(audience).isDisjoint(with: audiences) else {
            throw OAuthError.invalidClient("the client_assertion's aud must be this server's token endpoint or issuer")
        }
        guard let exp = Self.seconds(self.claims["exp"]) else { throw OAuthError.invalidClient("the client_assertion has no exp") }
        let expiresAt = Date(timeIntervalSince1970: exp)
        guard expiresAt > now, expiresAt <= now.addingTimeInterval(Self.maxLifetime + Self.skew) else {
            throw OAuthError.invalidClient("the client_assertion has expired or lives longer than an hour")
        }
        if let nbf = Self.seconds(self.claims["nbf"]), Date(timeIntervalSince1970: nbf) > now.addingTimeInterval(Self.skew) {
            throw OAuthError.invalidClient("the client_assertion is not valid yet")
        }
        guard let jti = self.claims["jti"] as? String, !jti.isEmpty, jti.utf8.count <= 256 else {
            throw OAuthError.invalidClient("the client_assertion has no jti")
        }
        return (jti, expiresAt)
    }

    private static func seconds(_ value: Any?) -> Double? {
        guard let number = value as? NSNumber, !(value is Bool) else { return nil }
        return number.doubleValue
    }

    private static func json(_ part: Substring) -> [String: Any]? {
        self.base64URL(part).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
    }

    private static func base64URL(_ part: Substring) -> Data? {
        var text = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !text.contains("=") else { return nil }
        text += String(repeating: "=", count: (4 - text.count % 4) % 4)
        return Data(base64Encoded: text)
    }
}
