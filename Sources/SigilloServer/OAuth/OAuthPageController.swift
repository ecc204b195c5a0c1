import CSCProtocol
import Foundation
import Hummingbird
import SigilloDomain

/// The holder's authorization page, `oauth2/authorize`: server-rendered, no JavaScript, like the activation pages. The
/// GET checks the client's request (or takes its pushed request) and shows who asks, for which credential and which
/// documents; the POST takes username, password and OTP (an empty OTP has an SMS code sent, for SMS devices) and sends
/// the browser back to the client with a code, or with `access_denied` when the holder refuses.
///
/// A request whose client or redirect URI is wrong is answered on the page, never redirected (RFC 6749 §4.1.2.1); any
/// other error of the request goes back to the redirect URI with its RFC 6749 code and the `state`.
struct OAuthPageController: Sendable {
    let oauth: OAuthServer

    static let title = "Autorizzazione / authorization"

    func addRoutes(to router: Router<SigilloContext>) {
        router.get("oauth2/authorize") { request, _ in
            try await self.guarded(redirectURI: nil) {
                // Decoded as a form (`+` is a space: clients encode the query so), every parameter at most once.
                let parameters: [String: String]
                do {
                    guard let pairs = AuthorizationRequestParser.formPairs(request.uri.query ?? "") else { throw OAuthError.invalidRequest("the query is malformed") }
                    parameters = try AuthorizationRequestParser.parameters(pairs)
                } catch let error as OAuthError {
                    throw SigilloError(.invalidRequest, error.message)
                }
                guard let clientID = parameters["client_id"], let client = try await self.oauth.client(id: clientID) else {
                    throw SigilloError(.invalidRequest, "unknown client_id: the application is not registered with this service")
                }
                let authorization: AuthorizationRequest
                if let requestURI = parameters["request_uri"] {
                    do {
                        authorization = try await self.oauth.takePushedRequest(requestURI, clientID: client.id)
                    } catch let error as OAuthError {
                        throw SigilloError(.linkExpired, error.message)
                    }
                } else {
                    guard let redirectURI = parameters["redirect_uri"], client.redirectURIs.contains(redirectURI) else {
                        throw SigilloError(.invalidRequest, "redirect_uri is missing or not registered for this application")
                    }
                    do {
                        authorization = try AuthorizationRequestParser.request(parameters, client: client, redirectURI: redirectURI)
                    } catch let error as OAuthError {
                        let reply = ["error": error.code, "error_description": error.message]
                        return Self.redirect(self.oauth.redirect(
                            AuthorizationRequest(clientID: client.id, redirectURI: redirectURI, state: parameters["state"], codeChallenge: "", scope: .service, credential: nil),
                            reply))
                    }
                }
                let transaction = try await self.oauth.beginAuthorization(authorization)
                return self.page(authorization, client: client, transaction: transaction)
            }
        }
        router.post("oauth2/authorize") { request, context in
            let form = try await WebController.form(request, context)
            let transaction = form["transaction"] ?? ""
            let pending = try? await self.oauth.pendingAuthorization(transaction)
            return try await self.guarded(redirectURI: pending?.request.redirectURI, retry: pending.map { ($0.request, $0.client, transaction, form["username"] ?? "") }) {
                if form["action"] == "deny" {
                    return Self.redirect(try await self.oauth.deny(pending: transaction))
                }
                let (username, password, otp) = (form["username"] ?? "", form["password"] ?? "", form["otp"] ?? "")
                if otp.trimmingCharacters(in: .whitespaces).isEmpty, let pending {
                    try await self.oauth.sendCode(pending: transaction, username: username, password: password)
                    return self.page(pending.request, client: pending.client, transaction: transaction, username: username,
                                     sent: "Ti abbiamo inviato un codice via SMS: inseriscilo con nome utente e password. / We texted you a code: enter it with your username and password.")
                }
                return Self.redirect(try await self.oauth.approve(pending: transaction, username: username, password: password, otp: otp))
            }
        }
    }

    /// Runs a page handler: a domain error shows the page again with the error while its authorization is pending (so the
    /// holder can correct a password), or the error page once it is over.
    private func guarded(redirectURI: String?, retry: (AuthorizationRequest, OAuthClient, String, String)? = nil,
                         _ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as SigilloError {
            let status = APIError(error).status
            let values: [String: Any] = ["error": ["code": error.code.rawValue, "message": error.message]]
            if let (request, client, transaction, username) = retry, error.code != .linkExpired {
                return self.page(request, client: client, transaction: transaction, username: username, extra: values, status: status)
            }
            var message = values
            message["link"] = ["href": "/", "label": "Torna all'inizio / start again"]
            return WebController.page("message", title: Self.title, message, status: status)
        }
    }

    private func page(_ request: AuthorizationRequest, client: OAuthClient, transaction: String, username: String = "", sent: String? = nil,
                      extra: [String: Any] = [:], status: HTTPResponse.Status = .ok) -> Response {
        var values = extra
        values["clientName"] = client.name
        values["transaction"] = transaction
        values["username"] = username
        values["smsHint"] = WebController.smsHint
        if let sent { values["sent"] = sent }
        if let scope = request.credential {
            values["credential"] = [
                "id": scope.credentialID, "signatures": scope.numSignatures, "algorithm": scope.hashAlgorithm.rawValue.uppercased(),
                "documents": zip(scope.hashes, scope.labels).enumerated().map { index, pair in
                    ["label": pair.1 ?? "Documento \(index + 1) / document \(index + 1)", "digest": Base64Text.encode(pair.0)]
                },
            ] as [String: Any]
        } else {
            values["service"] = true
        }
        var response = WebController.page("oauth-authorize", title: Self.title, values, status: status)
        // The form's answer redirects to the client: the browser checks that target against form-action too.
        response.headers[.contentSecurityPolicy] = WebController.contentSecurityPolicy(formAction: "'self' " + Self.origin(of: request.redirectURI))
        return response
    }

    /// The CSP source of a redirect URI: scheme, host and port of an http(s) URI, the scheme of a private-use one.
    static func origin(of uri: String) -> String {
        guard let components = URLComponents(string: uri), let scheme = components.scheme else { return "'none'" }
        guard let host = components.host, scheme == "https" || scheme == "http" else { return scheme + ":" }
        return "\(scheme)://\(host)" + (components.port.map { ":\($0)" } ?? "")
    }

    /// 303 to the client's redirect URI with the answer's parameters in its query.
    static func redirect(_ redirect: AuthorizationRedirect) -> Response {
        var components = URLComponents(string: redirect.redirectURI) ?? URLComponents()
        var items = components.queryItems ?? []
        items += redirect.parameters.map { URLQueryItem(name: $0.0, value: $0.1) }
        components.queryItems = items
        // `+` is a space to form decoders: encode it, as RFC 6749 §4.1.2 asks for application/x-www-form-urlencoded.
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        return Response(status: .seeOther, headers: [.location: components.string ?? redirect.redirectURI, .cacheControl: "no-store", .init("Referrer-Policy")!: "no-referrer"])
    }
}
