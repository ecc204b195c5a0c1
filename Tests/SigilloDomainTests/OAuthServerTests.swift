import Crypto
import Foundation
import PKCS11
import SigilloDomain
import SigilloTestSupport
import Testing

/// The authorization server's rules on an injected clock: lifetimes (pushed request and code 60 s, credential token
/// `sadLifetime` from the holder's approval), single use, the page's lock and enumeration rules, and what each token may do.
@Suite("OAuth2 authorization server")
struct OAuthServerTests {
    static let redirect = "https://wallet.example/cb"
    static let verifier = String(repeating: "v", count: 43) + "-._~0123"

    static func challenge(_ verifier: String = Self.verifier) -> String {
        Data(SHA256.hash(data: Data(verifier.utf8))).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func request(_ client: OAuthClient, credential: Credential?, hashes: [[UInt8]] = [digest("a"), digest("b")], numSignatures: Int? = nil) -> AuthorizationRequest {
        AuthorizationRequest(
            clientID: client.id, redirectURI: Self.redirect, state: "s-1", codeChallenge: Self.challenge(), scope: credential == nil ? .service : .credential,
            credential: credential.map {
                CredentialScope(credentialID: $0.id, numSignatures: numSignatures ?? hashes.count, hashAlgorithm: .sha256, hashes: hashes, labels: hashes.map { _ in "doc" })
            })
    }

    /// The holder approves `request` on the page; returns the code.
    static func approve(_ fixture: ServiceFixture, _ holder: ServiceFixture.ActiveHolder, _ request: AuthorizationRequest) async throws -> String {
        let oauth = fixture.service.oauth
        let page = try await oauth.beginAuthorization(request)
        let redirect = try await oauth.approve(pending: page, username: holder.username, password: holder.password, otp: fixture.otp(holder))
        #expect(redirect.redirectURI == Self.redirect)
        #expect(redirect.parameters.contains { $0 == ("state", "s-1") })
        return try #require(redirect.parameters.first { $0.0 == "code" }?.1)
    }

    static func oauthError(_ body: () async throws -> Void) async -> String? {
        do {
            try await body()
            return nil
        } catch let error as OAuthError {
            return error.code
        } catch {
            Issue.record("unexpected error: \(error)")
            return nil
        }
    }

    @Test("a pushed request and a code are single use and live 60 s; a credential token dies sadLifetime after the approval")
    func lifetimes() async throws {
        let fixture = try await ServiceFixture()
        let oauth = fixture.service.oauth
        let holder = try await fixture.activeHolder()
        let (client, _) = try await oauth.registerClient(name: "Wallet", redirectURIs: [Self.redirect], actor: "op")
        let request = Self.request(client, credential: holder.credential)

        let pushed = try await oauth.push(request, client: client)
        #expect(pushed.expiresIn == 60)
        #expect(try await oauth.takePushedRequest(pushed.requestURI, clientID: client.id) == request)
        #expect(await Self.oauthError { _ = try await oauth.takePushedRequest(pushed.requestURI, clientID: client.id) } == "invalid_request_uri")
        let late = try await oauth.push(request, client: client)
        fixture.clock.advance(61)
        #expect(await Self.oauthError { _ = try await oauth.takePushedRequest(late.requestURI, clientID: client.id) } == "invalid_request_uri")

        let stale = try await Self.approve(fixture, holder, request)
        fixture.clock.advance(61)
        #expect(await Self.oauthError { _ = try await oauth.exchange(code: stale, redirectURI: Self.redirect, codeVerifier: Self.verifier, client: client) } == "invalid_grant")

        let code = try await Self.approve(fixture, holder, request)
        fixture.clock.advance(20)
        let token = try await oauth.exchange(code: code, redirectURI: Self.redirect, codeVerifier: Self.verifier, client: client)
        #expect(token.expiresIn == 280, "five minutes from the approval, not from the exchange")
        #expect(try await fixture.service.authentication.bearer(accessToken: token.accessToken).credentialID == holder.credential.id)
        fixture.clock.advance(TimeInterval(token.expiresIn) - 1)
        #expect(try await fixture.service.authentication.bearer(accessToken: token.accessToken).holderID == holder.holder.id)
        fixture.clock.advance(1)
        #expect(await errorCode { _ = try await fixture.service.authentication.bearer(accessToken: token.accessToken) } == .expiredToken)
        #expect(await errorCode {
            _ = try await fixture.service.signing.signHash(holderID: holder.holder.id, credentialID: holder.credential.id, sad: token.accessToken,
                                                           hashes: [digest("a")], mechanism: .ecdsa(.sha256), credentialToken: true)
        } == .expiredSAD)
    }

    @Test("a code needs its client, its redirect URI and the PKCE verifier; a wrong verifier does not burn it; a replay revokes the token")
    func codeExchange() async throws {
        let fixture = try await ServiceFixture()
        let oauth = fixture.service.oauth
        let holder = try await fixture.activeHolder()
        let (client, _) = try await oauth.registerClient(name: "Wallet", redirectURIs: [Self.redirect, "https://wallet.example/other"], actor: "op")
        let (other, _) = try await oauth.registerClient(name: "Other", redirectURIs: [Self.redirect], actor: "op")
        let code = try await Self.approve(fixture, holder, Self.request(client, credential: holder.credential))
        #expect(await Self.oauthError { _ = try await oauth.exchange(code: code, redirectURI: Self.redirect, codeVerifier: Self.verifier, client: other) } == "invalid_grant")
        #expect(await Self.oauthError { _ = try await oauth.exchange(code: code, redirectURI: "https://wallet.example/other", codeVerifier: Self.verifier, client: client) } == "invalid_grant")
        #expect(await Self.oauthError { _ = try await oauth.exchange(code: code, redirectURI: Self.redirect, codeVerifier: String(repeating: "w", count: 43), client: client) } == "invalid_grant")
        #expect(await Self.oauthError { _ = try await oauth.exchange(code: code, redirectURI: Self.redirect, codeVerifier: "short", client: client) } == "invalid_grant")
        #expect(await Self.oauthError { _ = try await oauth.exchange(code: code, redirectURI: Self.redirect, codeVerifier: nil, client: client) } == "invalid_request")
        let token = try await oauth.exchange(code: code, redirectURI: Self.redirect, codeVerifier: Self.verifier, client: client)
        #expect(await Self.oauthError { _ = try await oauth.exchange(code: code, redirectURI: Self.redirect, codeVerifier: Self.verifier, client: client) } == "invalid_grant")
        #expect(await errorCode { _ = try await fixture.service.authentication.bearer(accessToken: token.accessToken) } == .invalidToken)
        #expect(await Self.oauthError { _ = try await oauth.exchange(code: "made-up", redirectURI: Self.redirect, codeVerifier: Self.verifier, client: client) } == "invalid_grant")

        // A credential suspended between the approval and the exchange gives no token.
        let approved = try await Self.approve(fixture, holder, Self.request(client, credential: holder.credential))
        _ = try await fixture.service.lifecycle.suspend(credentialID: holder.credential.id, actor: "op")
        #expect(await Self.oauthError { _ = try await oauth.exchange(code: approved, redirectURI: Self.redirect, codeVerifier: Self.verifier, client: client) } == "invalid_grant")
    }

    @Test("the page: unknown user, wrong and locked password answer alike; the credential must be the holder's and allow numSignatures")
    func pageChecks() async throws {
        let fixture = try await ServiceFixture(multisign: 3)
        let oauth = fixture.service.oauth
        let holder = try await fixture.activeHolder()
        let stranger = try await fixture.activeHolder(name: "Sara")
        let (client, _) = try await oauth.registerClient(name: "Wallet", redirectURIs: [Self.redirect], actor: "op")

        // Someone else's credential: refused once the password is right, before any OTP is spent.
        var page = try await oauth.beginAuthorization(Self.request(client, credential: stranger.credential))
        #expect(await errorCode { _ = try await oauth.approve(pending: page, username: holder.username, password: holder.password, otp: "000000") } == .notFound)
        page = try await oauth.beginAuthorization(Self.request(client, credential: holder.credential, numSignatures: 4))
        #expect(await errorCode { _ = try await oauth.approve(pending: page, username: holder.username, password: holder.password, otp: "000000") } == .tooManySignatures)

        page = try await oauth.beginAuthorization(Self.request(client, credential: holder.credential))
        #expect(await errorCode { _ = try await oauth.approve(pending: page, username: "nobody-here", password: holder.password, otp: "000000") } == .invalidPassword)
        for _ in 0..<5 {
            #expect(await errorCode { _ = try await oauth.approve(pending: page, username: holder.username, password: "wrong password", otp: "000000") } == .invalidPassword)
        }
        // Locked: the right password gets the same answer, and no OTP is looked at.
        #expect(await errorCode { _ = try await oauth.approve(pending: page, username: holder.username, password: holder.password, otp: fixture.otp(holder)) } == .invalidPassword)
        #expect(try await fixture.store.secretFailures(holderID: holder.holder.id).password == 5)
        #expect(try await fixture.store.secretFailures(holderID: holder.holder.id).otp == 0)

        // A refused page stays usable; a denied one is over.
        let other = try await oauth.beginAuthorization(Self.request(client, credential: stranger.credential))
        let denied = try await oauth.deny(pending: other)
        #expect(denied.parameters.contains { $0 == ("error", "access_denied") })
        #expect(await errorCode { _ = try await oauth.approve(pending: other, username: stranger.username, password: stranger.password, otp: fixture.otp(stranger)) } == .linkExpired)
    }

    @Test("a credential token signs its hashes once and nothing else; a service token and a SAD are not interchangeable with it")
    func tokenScopes() async throws {
        let fixture = try await ServiceFixture()
        let service = fixture.service
        let oauth = service.oauth
        let holder = try await fixture.activeHolder()
        let (client, issued) = try await oauth.registerClient(name: "Wallet", redirectURIs: [Self.redirect], actor: "op")
        let secret = try #require(issued)
        #expect(try await oauth.authenticateClient(id: client.id, secret: secret) == client)
        #expect(await Self.oauthError { _ = try await oauth.authenticateClient(id: client.id, secret: secret + "x") } == "invalid_client")
        #expect(await Self.oauthError { _ = try await oauth.authenticateClient(id: "unknown", secret: secret) } == "invalid_client")

        let hashes = [digest("a"), digest("b")]
        let credentialToken = try await oauth.exchange(code: try await Self.approve(fixture, holder, Self.request(client, credential: holder.credential)),
                                                       redirectURI: Self.redirect, codeVerifier: Self.verifier, client: client)
        let sign = { (sad: String, credentialToken: Bool, hashes: [[UInt8]]) in
            _ = try await service.signing.signHash(holderID: holder.holder.id, credentialID: holder.credential.id, sad: sad, hashes: hashes,
                                                   mechanism: .ecdsa(.sha256), credentialToken: credentialToken)
        }
        #expect(await errorCode { try await sign(credentialToken.accessToken, true, [digest("c")]) } == .invalidSAD)
        #expect(await errorCode {
            _ = try await service.authorization.extendTransaction(holderID: holder.holder.id, credentialID: holder.credential.id, sad: credentialToken.accessToken)
        } == .invalidSAD, "a credential token keeps its five minutes")
        #expect(await errorCode { try await sign(credentialToken.accessToken, false, hashes) } == .invalidSAD, "a credential token is not a SAD")
        try await sign(credentialToken.accessToken, true, hashes)
        #expect(await errorCode { try await sign(credentialToken.accessToken, true, hashes) } == .invalidSAD)
        #expect(await errorCode { _ = try await service.authentication.bearer(accessToken: credentialToken.accessToken) } == .invalidToken, "used up")

        let serviceToken = try await oauth.exchange(code: try await Self.approve(fixture, holder, Self.request(client, credential: nil)),
                                                    redirectURI: Self.redirect, codeVerifier: Self.verifier, client: client)
        #expect(try await service.authentication.bearer(accessToken: serviceToken.accessToken) == Bearer(holderID: holder.holder.id, credentialID: nil))
        #expect(await errorCode { try await sign(serviceToken.accessToken, true, hashes) } == .invalidSAD)
        #expect(await errorCode { try await sign(serviceToken.accessToken, false, hashes) } == .invalidSAD)

        // A SAD of credentials/authorize is no bearer token.
        let sad = try await service.authorization.authorize(holderID: holder.holder.id, credentialID: holder.credential.id, numSignatures: 1, hashes: [digest("d")],
                                                            hashAlgorithm: .sha256, password: holder.password, otp: fixture.otp(holder))
        #expect(await errorCode { _ = try await service.authentication.bearer(accessToken: sad.sad) } == .invalidToken)

        // Revocation: only the client's own tokens; removing the client ends the rest.
        let (other, _) = try await oauth.registerClient(name: "Other", redirectURIs: [Self.redirect], actor: "op")
        try await oauth.revoke(token: serviceToken.accessToken, client: other)
        #expect(try await service.authentication.bearer(accessToken: serviceToken.accessToken).holderID == holder.holder.id)
        try await oauth.removeClient(id: client.id, actor: "op")
        #expect(await errorCode { _ = try await service.authentication.bearer(accessToken: serviceToken.accessToken) } == .invalidToken)
        #expect(await Self.oauthError { _ = try await oauth.authenticateClient(id: client.id, secret: secret) } == "invalid_client")
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// A compact JWS of `claims` signed ES256 with `key` (or with `alg` claimed in the header).
    static func assertion(_ key: P256.Signing.PrivateKey, alg: String = "ES256", _ claims: [String: Any]) throws -> String {
        let header = Self.base64URL(try JSONSerialization.data(withJSONObject: ["alg": alg, "typ": "JWT"]))
        let body = Self.base64URL(try JSONSerialization.data(withJSONObject: claims))
        let signature = try key.signature(for: Data("\(header).\(body)".utf8)).rawRepresentation
        return "\(header).\(body).\(Self.base64URL(signature))"
    }

    @Test("private_key_jwt: an ES256 assertion of the registered key, for this server, unexpired, accepted once; a key client has no secret")
    func privateKeyJWT() async throws {
        let fixture = try await ServiceFixture()
        let oauth = fixture.service.oauth
        let key = P256.Signing.PrivateKey()
        let (client, secret) = try await oauth.registerClient(name: "Wallet", redirectURIs: [Self.redirect], publicKeyPEM: key.publicKey.pemRepresentation, actor: "op")
        #expect(secret == nil && client.secretHash == nil && client.publicKeyPEM != nil)
        #expect(await errorCode {
            _ = try await oauth.registerClient(name: "RSA", redirectURIs: [Self.redirect], publicKeyPEM: "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", actor: "op")
        } == .invalidRequest)
        let audience = oauth.issuer + "/oauth2/token"
        let audiences = [oauth.issuer, audience]
        let now = fixture.clock.now.timeIntervalSince1970
        func claims(_ changes: [String: Any] = [:]) -> [String: Any] {
            var claims: [String: Any] = ["iss": client.id, "sub": client.id, "aud": audience, "exp": Int(now) + 300, "iat": Int(now), "jti": UUID().uuidString]
            for (name, value) in changes { claims[name] = value }
            return claims
        }
        let good = try Self.assertion(key, claims(["jti": "once"]))
        #expect(try await oauth.authenticateClient(assertion: good, audiences: audiences) == client)
        #expect(await Self.oauthError { _ = try await oauth.authenticateClient(assertion: good, audiences: audiences) } == "invalid_client", "replayed jti")
        #expect(try await oauth.authenticateClient(assertion: try Self.assertion(key, claims(["aud": [oauth.issuer]])), audiences: audiences) == client)
        let refused: [String] = [
            try Self.assertion(P256.Signing.PrivateKey(), claims()),                          // another key
            try Self.assertion(key, alg: "HS256", claims()),                                  // another algorithm
            try Self.assertion(key, claims(["aud": "https://elsewhere.example/token"])),
            try Self.assertion(key, claims(["sub": "someone"])),
            try Self.assertion(key, claims(["iss": "client-unknown", "sub": "client-unknown"])),
            try Self.assertion(key, claims(["exp": Int(now) - 1])),
            try Self.assertion(key, claims(["exp": Int(now) + 7200])),
            try Self.assertion(key, claims(["nbf": Int(now) + 600])),
            try Self.assertion(key, claims(["jti": ""])),
            "not.a.jwt", "a.b", "",
        ]
        for assertion in refused {
            #expect(await Self.oauthError { _ = try await oauth.authenticateClient(assertion: assertion, audiences: audiences) } == "invalid_client", "\(assertion)")
        }
        // The assertion expires with its exp: after that, even a fresh jti of the same claims is refused.
        let short = try Self.assertion(key, claims(["exp": Int(now) + 30]))
        fixture.clock.advance(31)
        #expect(await Self.oauthError { _ = try await oauth.authenticateClient(assertion: short, audiences: audiences) } == "invalid_client")
        // No secret opens a key client.
        #expect(await Self.oauthError { _ = try await oauth.authenticateClient(id: client.id, secret: "") } == "invalid_client")
    }

    @Test("no secret of the flow is in the database in clear: client secret, request URI, page, code, tokens, verifier")
    func secretsAtRest() async throws {
        let fixture = try await ServiceFixture()
        let oauth = fixture.service.oauth
        let holder = try await fixture.activeHolder()
        let (client, issued) = try await oauth.registerClient(name: "Wallet", redirectURIs: [Self.redirect], actor: "op")
        let secret = try #require(issued)
        let pushed = try await oauth.push(Self.request(client, credential: holder.credential), client: client)
        let request = try await oauth.takePushedRequest(pushed.requestURI, clientID: client.id)
        let page = try await oauth.beginAuthorization(request)
        let redirect = try await oauth.approve(pending: page, username: holder.username, password: holder.password, otp: fixture.otp(holder))
        let code = try #require(redirect.parameters.first { $0.0 == "code" }?.1)
        let credentialToken = try await oauth.exchange(code: code, redirectURI: Self.redirect, codeVerifier: Self.verifier, client: client)
        let serviceToken = try await oauth.exchange(code: try await Self.approve(fixture, holder, Self.request(client, credential: nil)),
                                                    redirectURI: Self.redirect, codeVerifier: Self.verifier, client: client)
        var bytes = Data()
        for file in [fixture.databasePath, fixture.databasePath + "-wal"] where FileManager.default.fileExists(atPath: file) {
            bytes += try Data(contentsOf: URL(fileURLWithPath: file))
        }
        #expect(bytes.range(of: Data(client.id.utf8)) != nil, "the scan reads the database")
        for (what, value) in [("client secret", secret), ("request_uri", pushed.requestURI), ("page", page), ("code", code), ("verifier", Self.verifier),
                              ("credential token", credentialToken.accessToken), ("service token", serviceToken.accessToken), ("password", holder.password)] {
            #expect(bytes.range(of: Data(value.utf8)) == nil, "the \(what) is in the database")
        }
    }

    @Test("client registration: redirect URIs https, private-use scheme or loopback http; no fragment", arguments: [
        ("https://wallet.example/cb", true), ("eu.europa.ec.eudi.rqes:/callback", true), ("http://127.0.0.1:8123/cb", true),
        ("http://wallet.example/cb", false), ("https://wallet.example/cb#x", false), ("javascript:alert(1)", false), ("/relative", false), ("", false),
    ])
    func redirectURIs(uri: String, accepted: Bool) async throws {
        let fixture = try await ServiceFixture()
        let result = await errorCode { _ = try await fixture.service.oauth.registerClient(name: "Wallet", redirectURIs: [uri], actor: "op") }
        #expect(result == (accepted ? nil : .invalidRequest))
    }
}
