import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import SigilloDomain
import SigilloTestSupport
import Testing

/// The authorization server's endpoints over real TLS, without a browser: RFC 6749 error shapes, discovery, the page's
/// answers (its CSP, errors shown on the page, redirects), and a holder whose OTP comes by SMS approving on the page.
@Suite("OAuth2 endpoints over TLS")
struct OAuthEndpointTests {
    static let redirect = "https://wallet.example/callback"

    struct Answer {
        let status: Int
        let headers: [String: String]
        let body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(self.body.utf8))) as? [String: Any] ?? [:] }
        var error: String? { self.json["error"] as? String }
        var location: URLComponents? { self.headers["location"].flatMap(URLComponents.init(string:)) }
        func query(_ name: String) -> String? { self.location?.queryItems?.first { $0.name == name }?.value }
    }

    /// Requests without following redirects; `form` is sent `application/x-www-form-urlencoded`.
    struct Browser {
        let client: HTTPClient
        let base: String

        func send(_ method: HTTPMethod, _ path: String, form: [(String, String)]? = nil, contentType: String = "application/x-www-form-urlencoded",
                  basic: (String, String)? = nil) async throws -> Answer {
            var request = HTTPClientRequest(url: path.hasPrefix("https://") ? path : self.base + path)
            request.method = method
            if let form {
                var allowed = CharacterSet.alphanumerics
                allowed.insert(charactersIn: "-._~")
                let body = form.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
                request.headers.add(name: "Content-Type", value: contentType)
                request.body = .bytes(ByteBuffer(string: body))
            }
            if let basic { request.headers.add(name: "Authorization", value: "Basic " + Data("\(basic.0):\(basic.1)".utf8).base64EncodedString()) }
            let response = try await self.client.execute(request, timeout: .seconds(60))
            let bytes = try await response.body.collect(upTo: 1 << 22)
            var headers: [String: String] = [:]
            for header in response.headers { headers[header.name.lowercased()] = header.value }
            return Answer(status: Int(response.status.code), headers: headers, body: String(buffer: bytes))
        }
    }

    static func withBrowser<T: Sendable>(_ server: LiveServer, _ body: (Browser) async throws -> T) async throws -> T {
        var configuration = HTTPClient.Configuration(tlsConfiguration: LiveServer.clientTLS(trusting: server.tlsCAFile))
        configuration.redirectConfiguration = .disallow
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let result = try await body(Browser(client: client, base: server.baseURL))
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    static func s256(_ verifier: String) -> String {
        b64url(Array(SHA256.hash(data: Data(verifier.utf8))))
    }

    /// The value of the page's hidden `transaction` field.
    static func transaction(_ html: String) -> String? {
        guard let range = html.range(of: #"name="transaction" value=""#) else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    @Test("discovery, and RFC 6749 errors: client authentication, grant type, parameters, PKCE, scope, authorization_details")
    func errors() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Elsa", device: .hotp)
            let (client, issued) = try await server.services.domain.oauth.registerClient(name: "Wallet", redirectURIs: [Self.redirect], actor: "op")
            let secret = try #require(issued)
            try await Self.withBrowser(server) { browser in
                let metadata = try await browser.send(.GET, "/.well-known/oauth-authorization-server")
                #expect(metadata.status == 200 && metadata.json["issuer"] as? String == server.services.domain.oauth.issuer)
                #expect(metadata.json["code_challenge_methods_supported"] as? [String] == ["S256"])
                let info = try await server.post("/csc/v2/info")
                #expect(info.json["authType"] as? [String] == ["basic", "oauth2code"] && info.json["oauth2"] as? String == server.services.domain.oauth.issuer)
                #expect((info.json["methods"] as? [String])?.contains("oauth2/pushed_authorize") == true && info.json["supportsRar"] as? Bool == true)

                let code = [("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", Self.redirect), ("code_verifier", String(repeating: "a", count: 43))]
                let anonymous = try await browser.send(.POST, "/oauth2/token", form: code)
                #expect(anonymous.status == 401 && anonymous.error == "invalid_client" && anonymous.headers["www-authenticate"] != nil)
                #expect(try await browser.send(.POST, "/oauth2/token", form: code, basic: (client.id, "wrong")).error == "invalid_client")
                #expect(try await browser.send(.POST, "/oauth2/token", form: code + [("client_secret", secret)], basic: (client.id, secret)).error == "invalid_request")
                let json = try await browser.send(.POST, "/oauth2/token", form: code, contentType: "application/json", basic: (client.id, secret))
                #expect(json.status == 400 && json.error == "invalid_request")
                #expect(try await browser.send(.POST, "/oauth2/token", form: code + [("code", "y")], basic: (client.id, secret)).error == "invalid_request")
                let password = try await browser.send(.POST, "/oauth2/token", form: [("grant_type", "password")], basic: (client.id, secret))
                #expect(password.status == 400 && password.error == "unsupported_grant_type")
                let unknown = try await browser.send(.POST, "/oauth2/token", form: code + [("client_id", client.id), ("client_secret", secret)])
                #expect(unknown.status == 400 && unknown.error == "invalid_grant" && unknown.headers["cache-control"] == "no-store")

                let base = [("response_type", "code"), ("client_id", client.id), ("redirect_uri", Self.redirect), ("state", "s"),
                            ("code_challenge", Self.s256(String(repeating: "v", count: 43))), ("code_challenge_method", "S256")]
                let digest = Array(SHA256.hash(data: Data("doc".utf8)))
                let pushes: [([(String, String)], String)] = [
                    (base.filter { $0.0 != "code_challenge" }, "invalid_request"),
                    (base.filter { $0.0 != "code_challenge_method" } + [("code_challenge_method", "plain")], "invalid_request"),
                    (base + [("scope", "openid")], "invalid_scope"),
                    (base + [("authorization_details", #"[{"type":"payment"}]"#)], "invalid_authorization_details"),
                    (base + [("authorization_details", "not json")], "invalid_authorization_details"),
                    (base + [("scope", "credential"), ("credentialID", account.credential.id), ("hashes", b64url([1, 2, 3])), ("hashAlgorithmOID", "2.16.840.1.101.3.4.2.1")],
                     "invalid_request"),
                    (base + [("scope", "credential"), ("credentialID", account.credential.id), ("hashes", b64url(digest)), ("hashAlgorithmOID", "1.2.3")], "invalid_request"),
                    (base + [("scope", "credential"), ("credentialID", account.credential.id), ("hashes", b64url(digest) + "," + b64url(digest)),
                             ("hashAlgorithmOID", "2.16.840.1.101.3.4.2.1"), ("numSignatures", "1")], "invalid_request"),
                    (base.map { $0.0 == "redirect_uri" ? ("redirect_uri", Self.redirect + "/") : $0 } + [("scope", "service")], "invalid_request"),
                    (base + [("scope", "service"), ("request_uri", "urn:x")], "invalid_request"),
                    (base.map { $0.0 == "response_type" ? ("response_type", "token") : $0 } + [("scope", "service")], "unsupported_response_type"),
                ]
                for (form, error) in pushes {
                    let answer = try await browser.send(.POST, "/oauth2/pushed_authorize", form: form, basic: (client.id, secret))
                    #expect(answer.status == 400 && answer.error == error, "\(form): \(answer.status) \(answer.body)")
                }
                let pushed = try await browser.send(.POST, "/oauth2/pushed_authorize", form: base + [("scope", "service")], basic: (client.id, secret))
                #expect(pushed.status == 201 && pushed.json["expires_in"] as? Int == 60)

                // The page: a wrong client or redirect URI is answered there; other errors go back to the client with the state.
                func authorize(_ query: [(String, String)]) async throws -> Answer {
                    var components = URLComponents(string: server.baseURL + "/oauth2/authorize")!
                    components.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) }
                    return try await browser.send(.GET, components.string!)
                }
                let stranger = try await authorize(base.map { $0.0 == "client_id" ? ("client_id", "client-unknown") : $0 } + [("scope", "service")])
                #expect(stranger.status == 400 && stranger.body.contains(#"data-code="invalid_request""#) && stranger.headers["location"] == nil)
                let elsewhere = try await authorize(base.map { $0.0 == "redirect_uri" ? ("redirect_uri", "https://evil.example/cb") : $0 } + [("scope", "service")])
                #expect(elsewhere.status == 400 && elsewhere.headers["location"] == nil)
                let noScope = try await authorize(base)
                #expect(noScope.status == 303 && noScope.location?.host == "wallet.example" && noScope.query("error") == "invalid_scope" && noScope.query("state") == "s")
                #expect(noScope.query("iss") == server.services.domain.oauth.issuer && noScope.query("code") == nil)
                let silent = try await authorize(base + [("scope", "service"), ("prompt", "none")])
                #expect(silent.query("error") == "login_required")
                let twice = try await authorize(base + [("scope", "service"), ("scope", "credential")])
                #expect(twice.status == 400 && twice.headers["location"] == nil)
                let usedURI = try #require(pushed.json["request_uri"] as? String)
                let page = try await authorize([("client_id", client.id), ("request_uri", usedURI)])
                #expect(page.status == 200 && page.body.contains(#"data-scope="service""#))
                // Its answer goes to the client: the page lets the form's redirect go there, and nowhere else.
                #expect(page.headers["content-security-policy"]?.contains("form-action 'self' https://wallet.example;") == true)
                #expect(page.headers["content-security-policy"]?.contains("script-src") == false && page.headers["content-security-policy"]?.contains("default-src 'none'") == true)
                let reused = try await authorize([("client_id", client.id), ("request_uri", usedURI)])
                #expect(reused.status == 410 && reused.body.contains(#"data-code="link_expired""#))

                let revoke = try await browser.send(.POST, "/oauth2/revoke", form: [("token", "unknown")], basic: (client.id, secret))
                #expect(revoke.status == 200)
                #expect(try await browser.send(.POST, "/oauth2/revoke", form: [], basic: (client.id, secret)).error == "invalid_request")
            }
        }
    }

    @Test("a holder with SMS codes: an empty OTP sends the code for this signature, the code approves; the token signs over v1 too")
    func smsHolder() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Ugo", device: .sms)
            let (client, issued) = try await server.services.domain.oauth.registerClient(name: "Wallet SMS", redirectURIs: [Self.redirect], actor: "op")
            let secret = try #require(issued)
            let digest = Array(SHA256.hash(data: Data("deed".utf8)))
            let verifier = String(repeating: "k", count: 60)
            try await Self.withBrowser(server) { browser in
                var components = URLComponents(string: server.baseURL + "/oauth2/authorize")!
                components.queryItems = [
                    ("response_type", "code"), ("client_id", client.id), ("redirect_uri", Self.redirect), ("state", "st"), ("scope", "credential"),
                    ("code_challenge", Self.s256(verifier)), ("code_challenge_method", "S256"), ("credentialID", account.credential.id),
                    ("numSignatures", "1"), ("hashes", b64url(digest)), ("hashAlgorithmOID", "2.16.840.1.101.3.4.2.1"),
                ].map { URLQueryItem(name: $0.0, value: $0.1) }
                let page = try await browser.send(.GET, components.string!)
                #expect(page.status == 200 && page.body.contains("Wallet SMS") && page.body.contains(account.credential.id) && page.body.contains(b64(digest)))
                let transaction = try #require(Self.transaction(page.body))
                let sentBefore = try server.smsMessages().count
                let sent = try await browser.send(.POST, "/oauth2/authorize", form: [
                    ("transaction", transaction), ("username", account.username), ("password", account.password), ("otp", ""), ("action", "approve")])
                #expect(sent.status == 200 && sent.body.contains(#"id="sent""#), "\(sent.body)")
                #expect(try server.smsMessages().count == sentBefore + 1)
                let wrong = try await browser.send(.POST, "/oauth2/authorize", form: [
                    ("transaction", transaction), ("username", account.username), ("password", "not it"), ("otp", ""), ("action", "approve")])
                #expect(wrong.status == 400 && wrong.body.contains(#"data-code="invalid_password""#) && wrong.body.contains(transaction))
                #expect(try server.smsMessages().count == sentBefore + 1, "no SMS without the password")
                let approved = try await browser.send(.POST, "/oauth2/authorize", form: [
                    ("transaction", transaction), ("username", account.username), ("password", account.password), ("otp", try server.lastSMSCode()), ("action", "approve")])
                #expect(approved.status == 303 && approved.query("state") == "st", "\(approved.status) \(approved.body)")
                let code = try #require(approved.query("code"))
                let again = try await browser.send(.POST, "/oauth2/authorize", form: [("transaction", transaction), ("action", "deny")])
                #expect(again.status == 410, "the page's authorization is spent")

                let token = try await browser.send(.POST, "/oauth2/token", form: [
                    ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", Self.redirect), ("code_verifier", verifier),
                    ("client_id", client.id), ("client_secret", secret)])
                #expect(token.status == 200 && token.json["credentialID"] as? String == account.credential.id && token.headers["cache-control"] == "no-store")
                let bearer = try #require(token.json["access_token"] as? String)
                // v1 names on the v1 route: the credential token is the SAD there too.
                let signed = try await server.post("/csc/v1/signatures/signHash", [
                    "credentialID": account.credential.id, "hash": [b64(digest)], "signAlgo": "1.2.840.10045.4.3.2"], bearer: bearer)
                #expect(signed.status == 200 && (signed.json["signatures"] as? [String])?.count == 1, "\(signed.json)")
                let withSAD = try await server.post("/csc/v2/signatures/signHash", [
                    "credentialID": account.credential.id, "hashes": [b64(digest)], "signAlgo": "1.2.840.10045.4.3.2", "SAD": "x"], bearer: bearer)
                #expect(withSAD.status == 401, "used up")
            }
        }
    }
}
