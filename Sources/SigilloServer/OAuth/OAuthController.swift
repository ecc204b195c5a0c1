import CSCProtocol
import Foundation
import Hummingbird
import NIOCore
import SigilloDomain

/// The OAuth2 authorization server's machine endpoints on the public listener: `oauth2/pushed_authorize` (RFC 9126),
/// `oauth2/token`, `oauth2/revoke` (RFC 7009) and the metadata (RFC 8414). Errors are RFC 6749 JSON
/// (`{"error", "error_description"}`); clients authenticate with `client_secret_basic` or `client_secret_post`.
/// The holder's page (`oauth2/authorize`) is `OAuthPageController`.
struct OAuthController: Sendable {
    let oauth: OAuthServer

    func addRoutes(to router: Router<SigilloContext>) {
        router.get(".well-known/oauth-authorization-server") { _, _ in try JSONResponse.make(self.metadata()) }
        router.post("oauth2/pushed_authorize") { request, context in
            try await self.answer {
                let (client, form) = try await self.authenticate(request, context, endpoint: "/oauth2/pushed_authorize")
                guard form["request_uri"] == nil else { throw OAuthError.invalidRequest("request_uri is not allowed in a pushed request") }
                guard let redirectURI = form["redirect_uri"], client.redirectURIs.contains(redirectURI) else {
                    throw OAuthError.invalidRequest("redirect_uri is missing or not registered for this client")
                }
                let parsed = try AuthorizationRequestParser.request(form, client: client, redirectURI: redirectURI)
                let pushed = try await self.oauth.push(parsed, client: client)
                return try JSONResponse.make(PushedResponse(request_uri: pushed.requestURI, expires_in: pushed.expiresIn), status: .created)
            }
        }
        router.post("oauth2/token") { request, context in
            try await self.answer {
                let (client, form) = try await self.authenticate(request, context, endpoint: "/oauth2/token")
                guard let grantType = form["grant_type"] else { throw OAuthError.invalidRequest("grant_type is missing") }
                guard grantType == "authorization_code" else { throw OAuthError("unsupported_grant_type", "grant_type must be authorization_code") }
                guard let code = form["code"], !code.isEmpty else { throw OAuthError.invalidRequest("code is missing") }
                let token = try await self.oauth.exchange(code: code, redirectURI: form["redirect_uri"], codeVerifier: form["code_verifier"], client: client)
                return try JSONResponse.make(TokenResponse(token))
            }
        }
        router.post("oauth2/revoke") { request, context in
            try await self.answer {
                let (client, form) = try await self.authenticate(request, context, endpoint: "/oauth2/revoke")
                guard let token = form["token"], !token.isEmpty else { throw OAuthError.invalidRequest("token is missing") }
                try await self.oauth.revoke(token: token, client: client)
                return Response(status: .ok, headers: [.cacheControl: "no-store"])
            }
        }
    }

    /// Runs an endpoint; `OAuthError`s and domain errors become RFC 6749 JSON answers.
    private func answer(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as OAuthError {
            return Self.errorResponse(error)
        } catch let error as SigilloError {
            let api = APIError(error)
            // Unavailable stays 503 with its code; anything else a client sent is an invalid request.
            guard api.status == .badRequest || api.status == .notFound else { throw api }
            return Self.errorResponse(OAuthError.invalidRequest(error.message))
        }
    }

    static func errorResponse(_ error: OAuthError) -> Response {
        var response = APIError(status: HTTPResponse.Status(code: error.status), code: error.code, description: error.message).response()
        response.headers[.cacheControl] = "no-store"
        if error.status == 401 { response.headers[.wwwAuthenticate] = "Basic realm=\"sigillo\"" }
        return response
    }

    /// The client (`client_secret_basic`: HTTP Basic with the form-encoded id and secret; `client_secret_post`; or
    /// `private_key_jwt`, whose assertion names this server's issuer or the `endpoint` called as audience) and the request's
    /// form, without the secret or assertion.
    private func authenticate(_ request: Request, _ context: SigilloContext, endpoint: String) async throws -> (OAuthClient, [String: String]) {
        guard request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true else {
            throw OAuthError.invalidRequest("the body must be application/x-www-form-urlencoded")
        }
        let buffer = try await request.body.collect(upTo: BodyLimits.csc)
        guard let pairs = AuthorizationRequestParser.formPairs(String(buffer: buffer)) else { throw OAuthError.invalidRequest("the form is malformed") }
        var form = try AuthorizationRequestParser.parameters(pairs)
        let posted = form.removeValue(forKey: "client_secret")
        let basic = request.headers[.authorization].flatMap { $0.lowercased().hasPrefix("basic ") ? BasicCredentials(request.headers) : nil }
        if let assertionType = form.removeValue(forKey: "client_assertion_type") {
            let assertion = form.removeValue(forKey: "client_assertion")
            guard assertionType == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", let assertion else {
                throw OAuthError.invalidClient("client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer, with a client_assertion")
            }
            guard basic == nil, posted == nil else { throw OAuthError.invalidRequest("use one client authentication method, not two") }
            let issuer = self.oauth.issuer
            let client = try await self.oauth.authenticateClient(assertion: assertion, audiences: [issuer, issuer + endpoint])
            guard form["client_id"] == nil || form["client_id"] == client.id else { throw OAuthError.invalidRequest("client_id differs from the authenticated client") }
            form["client_id"] = client.id
            return (client, form)
        }
        let id: String, secret: String
        switch (basic, posted) {
        case (let basic?, nil):
            // RFC 6749 §2.3.1: both halves are form-encoded before the Basic encoding.
            guard let user = basic.username.replacingOccurrences(of: "+", with: " ").removingPercentEncoding,
                  let password = basic.password.replacingOccurrences(of: "+", with: " ").removingPercentEncoding else { throw OAuthError.invalidClient() }
            guard form["client_id"] == nil || form["client_id"] == user else { throw OAuthError.invalidRequest("client_id differs from the authenticated client") }
            (id, secret) = (user, password)
        case (nil, let posted?):
            guard let clientID = form["client_id"] else { throw OAuthError.invalidClient("client_id is missing") }
            (id, secret) = (clientID, posted)
        case (.some, .some):
            throw OAuthError.invalidRequest("use one client authentication method, not two")
        case (nil, nil):
            throw OAuthError.invalidClient("client authentication is required (client_secret_basic or client_secret_post)")
        }
        let client = try await self.oauth.authenticateClient(id: id, secret: secret)
        form["client_id"] = client.id
        return (client, form)
    }

    private func metadata() -> Metadata {
        let base = self.oauth.issuer
        return Metadata(
            issuer: base, authorization_endpoint: base + "/oauth2/authorize", token_endpoint: base + "/oauth2/token",
            pushed_authorization_request_endpoint: base + "/oauth2/pushed_authorize", revocation_endpoint: base + "/oauth2/revoke")
    }

    // MARK: Wire shapes

    struct PushedResponse: Encodable {
        let request_uri: String
        let expires_in: Int
    }

    /// RFC 6749 §5.1, with the CSC `credentialID` and the RFC 9396 `authorization_details` granted.
    struct TokenResponse: Encodable {
        let access_token: String
        let token_type = "Bearer"
        let expires_in: Int
        let scope: String
        let credentialID: String?
        let authorization_details: [Detail]?

        struct Detail: Encodable {
            let type: String
            let credentialID: String
            let numSignatures: Int
            let hashAlgorithmOID: String
            let documentDigests: [Digest]
        }

        struct Digest: Encodable {
            let hash: String
            let label: String?
        }

        init(_ token: OAuthToken) {
            self.access_token = token.accessToken
            self.expires_in = token.expiresIn
            self.scope = token.request.scope.rawValue
            self.credentialID = token.request.credential?.credentialID
            if let type = token.request.authorizationDetailsType, let scope = token.request.credential {
                self.authorization_details = [Detail(
                    type: type, credentialID: scope.credentialID, numSignatures: scope.numSignatures, hashAlgorithmOID: OID.hashOID(scope.hashAlgorithm),
                    documentDigests: zip(scope.hashes, scope.labels).map { Digest(hash: Data($0.0).base64EncodedString(), label: $0.1) })]
            } else {
                self.authorization_details = nil
            }
        }
    }

    /// RFC 8414 authorization server metadata.
    struct Metadata: Encodable {
        let issuer: String
        let authorization_endpoint: String
        let token_endpoint: String
        let pushed_authorization_request_endpoint: String
        let revocation_endpoint: String
        let require_pushed_authorization_requests = false
        let response_types_supported = ["code"]
        let response_modes_supported = ["query"]
        let grant_types_supported = ["authorization_code"]
        let code_challenge_methods_supported = ["S256"]
        let token_endpoint_auth_methods_supported = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
        let token_endpoint_auth_signing_alg_values_supported = ["ES256"]
        let revocation_endpoint_auth_methods_supported = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
        let revocation_endpoint_auth_signing_alg_values_supported = ["ES256"]
        let scopes_supported = ["service", "credential"]
        let authorization_details_types_supported = AuthorizationRequestParser.credentialTypes.sorted()
        let prompt_values_supported = ["login"]
        let authorization_response_iss_parameter_supported = true
    }
}
