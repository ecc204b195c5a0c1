import SigilloDomain

extension OpenAPI {
    /// The OAuth2 authorization server for wallets (`OAuthController`, `OAuthPageController`): metadata, PAR, the holder's
    /// page, token and revocation. The machine endpoints take `application/x-www-form-urlencoded` bodies and answer
    /// RFC 6749 errors (`{"error", "error_description"}`, the `Error` schema).
    static func addOAuth2(to document: inout OpenAPIDocument) {
        document.tag("oauth2", "OAuth2 for wallets (CSC v2): authorization code with PKCE S256, PAR (RFC 9126), RAR `authorization_details` (RFC 9396); "
            + "a `credential` token is bound to one credential and its document digests and signs them with `signatures/signHash` (no SAD)")
        document.schema("OAuthMetadata", Schema.object([
            "issuer": Schema.string, "authorization_endpoint": Schema.string, "token_endpoint": Schema.string,
            "pushed_authorization_request_endpoint": Schema.string, "revocation_endpoint": Schema.string,
            "require_pushed_authorization_requests": Schema.boolean,
            "response_types_supported": Schema.array(Schema.string), "response_modes_supported": Schema.array(Schema.string),
            "grant_types_supported": Schema.array(Schema.string), "code_challenge_methods_supported": Schema.array(Schema.string),
            "token_endpoint_auth_methods_supported": Schema.array(Schema.string), "token_endpoint_auth_signing_alg_values_supported": Schema.array(Schema.string),
            "revocation_endpoint_auth_methods_supported": Schema.array(Schema.string),
            "revocation_endpoint_auth_signing_alg_values_supported": Schema.array(Schema.string),
            "scopes_supported": Schema.array(Schema.string), "authorization_details_types_supported": Schema.array(Schema.string),
            "prompt_values_supported": Schema.array(Schema.string), "authorization_response_iss_parameter_supported": Schema.boolean,
        ], required: ["issuer", "authorization_endpoint", "token_endpoint", "response_types_supported"], description: "RFC 8414 authorization server metadata"))
        let digest = Schema.object(["hash": Schema.string("Base64"), "label": Schema.string("The document's name, shown to the holder")], required: ["hash"])
        document.schema("OAuthToken", Schema.object([
            "access_token": Schema.string("The bearer token: a `credential` token signs its digests once each, within 5 minutes"),
            "token_type": Schema.string("Bearer", values: ["Bearer"]), "expires_in": Schema.integer("Seconds"),
            "scope": Schema.string("service or credential", values: ["service", "credential"]),
            "credentialID": Schema.string("The credential a `credential` token is for"),
            "authorization_details": Schema.array(Schema.object([
                "type": Schema.string, "credentialID": Schema.string, "numSignatures": Schema.integer, "hashAlgorithmOID": Schema.string("OID"),
                "documentDigests": Schema.array(digest),
            ], required: ["type", "credentialID", "numSignatures", "hashAlgorithmOID", "documentDigests"]), description: "RAR requests: what was granted"),
        ], required: ["access_token", "token_type", "expires_in", "scope"]))

        // RFC 6749 errors of the machine endpoints; client authentication on each (basic, post or private_key_jwt).
        let clientAuthentication = "`client_secret_basic` (HTTP Basic), `client_secret_post` (`client_id` + `client_secret`) or `private_key_jwt` "
            + "(`client_assertion_type` + `client_assertion`, ES256)"
        func errors(_ extra: [Int: String] = [:]) -> [Int: JSONValue] {
            self.errors(extra.merging([
                400: "`invalid_request` (a missing or malformed parameter, not a form), `invalid_grant`, `unsupported_grant_type`, `invalid_scope`, "
                    + "`invalid_authorization_details`",
                401: "`invalid_client`: the client did not authenticate (" + clientAuthentication + ")",
            ]) { $1 })
        }
        let request = [
            "client_id", "client_secret", "client_assertion_type", "client_assertion", "response_type", "redirect_uri", "state", "code_challenge",
            "code_challenge_method", "scope", "credentialID", "numSignatures", "hashes", "hashAlgorithmOID", "authorization_details", "prompt",
        ]
        document.add("GET", "/.well-known/oauth-authorization-server", tag: "oauth2", summary: "Authorization server metadata (RFC 8414)",
                     responses: [200: Reply.json("The metadata", Schema.ref("OAuthMetadata"))])
        document.add("POST", "/oauth2/pushed_authorize", tag: "oauth2", summary: "Pushed authorization request (RFC 9126): the request_uri for oauth2/authorize",
                     description: "The authorization request's parameters, client authenticated: " + clientAuthentication + ". `scope=service`, or "
                        + "`scope=credential` with `credentialID`, `numSignatures`, `hashes` (comma-separated base64url) and `hashAlgorithmOID`, or RAR "
                        + "`authorization_details` (JSON) of type `credential`. The request_uri is good once, for 60 seconds.",
                     request: Body.form(request), responses: errors().merging([
                        201: Reply.json("The request URI", Schema.object(["request_uri": Schema.string, "expires_in": Schema.integer("Seconds")],
                                                                         required: ["request_uri", "expires_in"])),
                     ]) { $1 })
        document.add("GET", "/oauth2/authorize", tag: "oauth2", summary: "The holder's authorization page (HTML, no JavaScript)",
                     description: "Who asks, which credential, each document's label and digest; the holder answers with username, password and OTP. "
                        + "Authorization code only, PKCE S256 required. An unknown client or unregistered redirect URI is answered on the page; any other "
                        + "error of the request is sent to the redirect URI (303, RFC 6749 error and `state`).",
                     query: request.filter { !["client_secret", "client_assertion_type", "client_assertion"].contains($0) }.map { ($0, "RFC 6749 / CSC v2") }
                        + [("request_uri", "From oauth2/pushed_authorize")],
                     responses: [
                        200: Reply.html("The page"),
                        303: Reply.empty("To the redirect URI with `error`, `error_description`, `state` and `iss` (a request the redirect URI may hear about)"),
                        400: Reply.html("The error page: unknown client_id or redirect_uri not registered"),
                        410: Reply.html("The error page: the request_uri was used or expired"),
                        429: Reply.html("Too many requests (`Retry-After`)"),
                        503: Reply.html("The error page (token or database unavailable)"),
                     ])
        document.add("POST", "/oauth2/authorize", tag: "oauth2", summary: "The holder approves (username, password, OTP) or refuses",
                     description: "Approved: 303 to the redirect URI with `code` (single use, 60 s), `state` and `iss`. Refused (`action=deny`): 303 with "
                        + "`error=access_denied`. An empty OTP has an SMS code sent (SMS devices) and shows the page again. A wrong password or OTP shows "
                        + "the page with the error, under the same locks as every route.",
                     request: Body.form(["transaction", "username", "password", "otp", "action"]), responses: [
                        303: Reply.empty("To the redirect URI with `code` (or `error`), `state` and `iss`"),
                        200: Reply.html("The page again: an SMS code was sent"),
                        400: Reply.html("The page with the error (a wrong password or OTP, a missing field)"),
                        403: Reply.html("The page with the error (password or OTP locked, the credential not usable)"),
                        404: Reply.html("The error page (no such authorization in progress)"),
                        410: Reply.html("The error page (the authorization expired)"),
                        413: Reply.error("`payload_too_large`: the form is over 64 KiB"),
                        429: Reply.html("Too many requests (`Retry-After`)"),
                        503: Reply.html("The page with the error (token or database unavailable)"),
                     ])
        document.add("POST", "/oauth2/token", tag: "oauth2", summary: "The access token for an authorization code (PKCE verifier checked)",
                     request: Body.form(["grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_secret", "client_assertion_type", "client_assertion"]),
                     responses: errors().merging([200: Reply.json("The token", Schema.ref("OAuthToken"))]) { $1 })
        document.add("POST", "/oauth2/revoke", tag: "oauth2", summary: "Revokes a token of this client (RFC 7009; any other token: 200, nothing changes)",
                     request: Body.form(["token", "token_type_hint", "client_id", "client_secret", "client_assertion_type", "client_assertion"]),
                     responses: errors().merging([200: Reply.empty("Revoked (or not this client's)")]) { $1 })
    }

    /// The OAuth2 client registry on the admin listener (`sigillo admin clients`).
    static func addOAuth2Clients(to document: inout OpenAPIDocument, errors: ([Int: String]) -> [Int: JSONValue]) {
        document.tag("clients", "OAuth2 clients (wallets) of the authorization server")
        document.schema("OAuthClient", Schema.object([
            "clientID": Schema.string, "name": Schema.string("Shown to holders on the authorization page"),
            "redirectURIs": Schema.array(Schema.string, description: "Matched exactly"), "createdAt": Schema.string("ISO 8601", format: "date-time"),
            "authentication": Schema.string("client_secret or private_key_jwt", values: ["client_secret", "private_key_jwt"]),
        ], required: ["clientID", "name", "redirectURIs", "createdAt", "authentication"]))
        let operatorOnly = OpenAPIDocument.Security.operatorCertificate
        document.add("POST", "/admin/v1/clients", tag: "clients", summary: "Registers a client: its secret is in this answer only (none with publicKeyPEM)",
                     security: operatorOnly,
                     request: Body.json(Schema.object([
                        "name": Schema.string, "redirectURIs": Schema.array(Schema.string("https, a private-use scheme, or http to the loopback address")),
                        "publicKeyPEM": Schema.string("An EC P-256 public key: the client authenticates with private_key_jwt"),
                     ], required: ["name", "redirectURIs"], closed: false)),
                     responses: errors([:]).merging([201: Reply.json("The client and its secret", Schema.object([
                        "client": Schema.ref("OAuthClient"), "clientSecret": Schema.string("Shown once"),
                     ], required: ["client"]))]) { $1 })
        document.add("GET", "/admin/v1/clients", tag: "clients", summary: "Every client", security: operatorOnly,
                     responses: errors([:]).merging([200: Reply.json("The clients", Schema.object(["clients": Schema.array(Schema.ref("OAuthClient"))], required: ["clients"]))]) { $1 })
        document.add("DELETE", "/admin/v1/clients/{id}", tag: "clients", summary: "Removes a client and revokes its tokens", security: operatorOnly,
                     responses: errors([404: "`not_found`: no such client"]).merging([200: Reply.json("Removed", Schema.object([
                        "clientID": Schema.string, "status": Schema.string(values: ["removed"]),
                     ], required: ["clientID", "status"]))]) { $1 })
    }
}
