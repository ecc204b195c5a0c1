import Foundation
import PKCS11

/// A client of the OAuth2 authorization server (a wallet's back end, a signing application), registered by an
/// operator (`sigillo admin clients add`). Its secret is kept only as a digest.
public struct OAuthClient: Sendable, Equatable {
    public var id: String
    public var name: String
    /// SHA-256 of the client secret (a 256-bit random token, shown once); nil for a client that signs its assertions.
    public var secretHash: [UInt8]?
    /// The EC P-256 public key (PEM) of a client that authenticates with `private_key_jwt` (ES256); nil for a secret.
    public var publicKeyPEM: String?
    /// Compared exactly (RFC 6749 §3.1.2.3, OAuth 2.1): no prefix, no wildcard.
    public var redirectURIs: [String]
    public var createdAt: Date

    public init(id: String, name: String, secretHash: [UInt8]?, publicKeyPEM: String? = nil, redirectURIs: [String], createdAt: Date) {
        self.id = id
        self.name = name
        self.secretHash = secretHash
        self.publicKeyPEM = publicKeyPEM
        self.redirectURIs = redirectURIs
        self.createdAt = createdAt
    }
}

/// What an authorization request asks for: an account token (`service`) or signatures of exact digests (`credential`).
public enum OAuthScope: String, Sendable, Codable {
    case service
    case credential
}

/// The digests a `credential` request asks to sign, with the labels the holder is shown.
public struct CredentialScope: Sendable, Codable, Equatable {
    public var credentialID: String
    public var numSignatures: Int
    public var hashAlgorithm: HashAlgorithm
    public var hashes: [[UInt8]]
    /// One per hash (nil when the client gave none).
    public var labels: [String?]

    public init(credentialID: String, numSignatures: Int, hashAlgorithm: HashAlgorithm, hashes: [[UInt8]], labels: [String?]) {
        self.credentialID = credentialID
        self.numSignatures = numSignatures
        self.hashAlgorithm = hashAlgorithm
        self.hashes = hashes
        self.labels = labels
    }
}

/// A validated authorization request (from the query of `oauth2/authorize` or pushed by `oauth2/pushed_authorize`).
public struct AuthorizationRequest: Sendable, Codable, Equatable {
    public var clientID: String
    public var redirectURI: String
    public var state: String?
    /// PKCE S256: base64url(SHA-256(code_verifier)), 43 characters.
    public var codeChallenge: String
    public var scope: OAuthScope
    public var credential: CredentialScope?
    /// The request came as RAR `authorization_details` (its type is echoed in the token response).
    public var authorizationDetailsType: String?

    public init(clientID: String, redirectURI: String, state: String?, codeChallenge: String, scope: OAuthScope, credential: CredentialScope?,
                authorizationDetailsType: String? = nil) {
        self.clientID = clientID
        self.redirectURI = redirectURI
        self.state = state
        self.codeChallenge = codeChallenge
        self.scope = scope
        self.credential = credential
        self.authorizationDetailsType = authorizationDetailsType
    }
}

/// The kinds of short-lived, single-use records of the authorization server.
public enum OAuthGrantKind: String, Sendable, CaseIterable {
    /// A pushed authorization request (RFC 9126): its `request_uri`, 60 s.
    case pushedRequest = "par"
    /// An authorization request the holder's page shows, until approved, denied or expired.
    case pending
    /// An authorization code, 60 s.
    case code
    /// The `jti` of a client assertion (`private_key_jwt`), kept until it expires so it is accepted once.
    case assertion = "jwt"
}

/// A pushed request, a pending authorization or a code, stored under the digest of its identifier.
public struct OAuthGrant: Sendable, Equatable {
    public var idHash: [UInt8]
    public var kind: OAuthGrantKind
    public var clientID: String
    /// `OAuthGrantPayload` as JSON (no secret in it: the request, and the holder once approved).
    public var payload: Data
    public var expiresAt: Date
    public var used: Bool
    /// The digest of the token a code was exchanged for (revoked if the code is replayed).
    public var tokenHash: [UInt8]?

    public init(idHash: [UInt8], kind: OAuthGrantKind, clientID: String, payload: Data, expiresAt: Date, used: Bool = false, tokenHash: [UInt8]? = nil) {
        self.idHash = idHash
        self.kind = kind
        self.clientID = clientID
        self.payload = payload
        self.expiresAt = expiresAt
        self.used = used
        self.tokenHash = tokenHash
    }
}

/// What a grant carries.
struct OAuthGrantPayload: Codable {
    var request: AuthorizationRequest
    /// Set on a code: who approved, and when (the credential token dies `sadLifetime` after).
    var holderID: String?
    var authorizedAt: Date?
}

/// An RFC 6749 error of the authorization server: its code (`invalid_request`, `invalid_client`, `invalid_grant`, …), a
/// description for the client, and the HTTP status of a JSON answer.
public struct OAuthError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: String
    public let message: String
    public let status: Int

    public init(_ code: String, _ message: String, status: Int = 400) {
        self.code = code
        self.message = message
        self.status = status
    }

    public var description: String { "\(self.code): \(self.message)" }

    public static func invalidRequest(_ message: String) -> OAuthError { OAuthError("invalid_request", message) }
    public static func invalidClient(_ message: String = "client authentication failed") -> OAuthError { OAuthError("invalid_client", message, status: 401) }
    public static func invalidGrant(_ message: String) -> OAuthError { OAuthError("invalid_grant", message) }
    public static func invalidScope(_ message: String) -> OAuthError { OAuthError("invalid_scope", message) }
}

/// An access token issued at `oauth2/token`.
public struct OAuthToken: Sendable {
    public var accessToken: String
    public var expiresIn: Int
    public var request: AuthorizationRequest
}

/// Where the holder's browser goes after the page: the client's redirect URI with a code, or with an error.
public struct AuthorizationRedirect: Sendable {
    public var redirectURI: String
    public var parameters: [(String, String)]
}
