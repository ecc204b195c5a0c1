import CSCProtocol
import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import SigilloDomain
@testable import SigilloServer
import SigilloTestSupport
import Testing

/// The public router without a listener (HummingbirdTesting's `.router`): the bearer authenticator, error shapes,
/// body limits and the CSC answers' encoding.
@Suite("CSC routes through the router: bearer authentication, error shapes, body limits")
struct CSCRouterTests {
    /// The public application's router on a fresh token, database and CA.
    func withRouter(clock: ServiceClock = .system, _ body: @Sendable (any TestClientProtocol, SigilloServices) async throws -> Void) async throws {
        let fixture = try TestToken(sessions: 2)
        let (_, services, _) = try await LiveServer.services(fixture, clock: clock)
        let app = Application(router: SigilloApplication.router(services: services))
        try await app.test(.router) { client in try await body(client, services) }
    }

    func json(_ buffer: ByteBuffer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer: buffer)) as? [String: Any])
    }

    func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    @Test("routes behind the authenticator refuse a missing, malformed or unknown bearer token with 401 invalid_token, v1 and v2")
    func bearerRefusals() async throws {
        try await self.withRouter { client, _ in
            for version in [1, 2] {
                for method in ["credentials/list", "credentials/info", "credentials/authorize", "signatures/signHash", "auth/revoke"] {
                    for header in [nil, "Basic Zm9vOmJhcg==", "Bearer", "Bearer not-a-token"] {
                        var headers = HTTPFields()
                        if let header { headers[.authorization] = header }
                        try await client.execute(uri: "/csc/v\(version)/\(method)", method: .post, headers: headers, body: self.body("{}")) { response in
                            #expect(response.status == .unauthorized, "\(method) \(header ?? "none")")
                            let answer = try self.json(response.body)
                            #expect(answer["error"] as? String == "invalid_token", "\(method) \(header ?? "none")")
                        }
                    }
                }
            }
        }
    }

    @Test("a valid token reaches the route with its holder; a revoked one does not; an expired one says expired_token")
    func bearerAccepted() async throws {
        let clock = TestClock()
        try await self.withRouter(clock: clock.serviceClock) { client, services in
            let account = try await LiveServer.activate(services.domain, name: "Anna")
            let credential = account.credential
            // A token 30 minutes old (1800 s, the login's expires_in) still works for its last second, then says expired_token.
            let old = try await services.domain.authentication.issueAccessToken(username: account.username, password: account.password)
            #expect(old.expiresIn == 1800)
            var oldHeaders = HTTPFields()
            oldHeaders[.authorization] = "Bearer \(old.token)"
            clock.advance(1799)
            try await client.execute(uri: "/csc/v1/credentials/list", method: .post, headers: oldHeaders, body: self.body("{}")) { response in
                #expect(response.status == .ok)
            }
            clock.advance(1)
            for version in [1, 2] {
                try await client.execute(uri: "/csc/v\(version)/credentials/list", method: .post, headers: oldHeaders, body: self.body("{}")) { response in
                    #expect(response.status == .unauthorized)
                    let answer = try self.json(response.body)
                    #expect(answer["error"] as? String == "expired_token", "\(answer)")
                }
            }
            let login = try await services.domain.authentication.issueAccessToken(username: account.username, password: account.password)
            var headers = HTTPFields()
            headers[.authorization] = "Bearer \(login.token)"
            try await client.execute(uri: "/csc/v2/credentials/list", method: .post, headers: headers, body: self.body("")) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.cacheControl] == "no-store")
                let answer = try self.json(response.body)
                #expect(answer["credentialIDs"] as? [String] == [credential.id])
            }
            // Another holder's credential is not found through this token.
            try await client.execute(uri: "/csc/v1/credentials/info", method: .post, headers: headers, body: self.body(#"{"credentialID":"c-other"}"#)) { response in
                #expect(response.status == .badRequest)
                let answer = try self.json(response.body)
                #expect(answer["error"] as? String == "invalid_request")
            }
            // auth/revoke with no body revokes the caller's own token.
            try await client.execute(uri: "/csc/v1/auth/revoke", method: .post, headers: headers, body: self.body("")) { response in
                #expect(response.status == .noContent)
            }
            try await client.execute(uri: "/csc/v1/credentials/list", method: .post, headers: headers, body: self.body("{}")) { response in
                #expect(response.status == .unauthorized)
                let answer = try self.json(response.body)
                #expect(answer["error"] as? String == "invalid_token")
            }
        }
    }

    @Test("signHash with a bearer token this node has cached (issue 16): revoked behind the node's back, as a password change or another node does, it is 401 invalid_token, v1 and v2, and nothing is spent")
    func signHashWithCachedTokenRevoked() async throws {
        try await self.withRouter { client, services in
            let account = try await LiveServer.activate(services.domain, name: "Tea")
            let hashes = ["a", "b"].map { Array(SHA256.hash(data: Data($0.utf8))) }
            let auth = try await services.domain.authorization.authorize(
                holderID: account.holder.id, credentialID: account.credential.id, numSignatures: 2, hashes: hashes, hashAlgorithm: .sha256,
                password: account.password, otp: HOTP.code(secret: account.secret, counter: 1))
            func used() async throws -> Int? { try await services.store.sad(idHash: Array(SHA256.hash(data: Data(auth.sad.utf8))))?.used }
            let login = try await services.domain.authentication.issueAccessToken(username: account.username, password: account.password)
            var headers = HTTPFields()
            headers[.authorization] = "Bearer \(login.token)"
            func request(_ hash: [UInt8]) -> ByteBuffer {
                self.body(#"{"credentialID":"\#(account.credential.id)","SAD":"\#(auth.sad)","hash":["\#(Base64Text.encode(hash))"],"signAlgo":"1.2.840.10045.4.3.2"}"#)
            }
            try await client.execute(uri: "/csc/v1/signatures/signHash", method: .post, headers: headers, body: request(hashes[0])) { response in
                #expect(response.status == .ok)
                let answer = try self.json(response.body)
                #expect((answer["signatures"] as? [String])?.count == 1)
            }
            #expect(try await used() == 1)
            // What a password change does (every token of the holder revoked), on the store: this node's cache was not told.
            try await services.store.revokeAccessTokens(holderID: account.holder.id)
            #expect(services.domain.authentication.cachedHolderID(accessToken: login.token) == account.holder.id)
            for version in [1, 2] {
                try await client.execute(uri: "/csc/v\(version)/signatures/signHash", method: .post, headers: headers, body: request(hashes[1])) { response in
                    #expect(response.status == .unauthorized)
                    let answer = try self.json(response.body)
                    #expect(answer["error"] as? String == "invalid_token", "\(answer)")
                }
            }
            #expect(try await used() == 1)
        }
    }

    @Test("info needs no token; v2 lists its signature algorithms, v1 does not")
    func info() async throws {
        try await self.withRouter { client, _ in
            try await client.execute(uri: "/csc/v1/info", method: .post, body: self.body("")) { response in
                let info = try self.json(response.body)
                #expect(response.status == .ok && info["specs"] as? String == "1.0.4.0" && info["signAlgorithms"] == nil)
                #expect((info["methods"] as? [String])?.contains("signatures/signHash") == true)
            }
            try await client.execute(uri: "/csc/v2/info", method: .post, body: self.body("{}")) { response in
                let info = try self.json(response.body)
                #expect(info["specs"] as? String == "2.0.0.0")
                #expect(((info["signAlgorithms"] as? [String: Any])?["algos"] as? [String])?.contains(OID.rsaPSS) == true)
            }
        }
    }

    @Test("malformed JSON and wrong field types: 400 invalid_request; unknown route: 404; a body over 1 MiB: 413")
    func errors() async throws {
        try await self.withRouter { client, _ in
            try await client.execute(uri: "/csc/v1/auth/login", method: .post, body: self.body("{not json")) { response in
                #expect(response.status == .badRequest)
                let answer = try self.json(response.body)
                #expect(answer["error"] as? String == "invalid_request")
            }
            try await client.execute(uri: "/csc/v1/nothing/here", method: .post, body: self.body("{}")) { response in
                #expect(response.status == .notFound)
                let answer = try self.json(response.body)
                #expect(answer["error"] as? String == "not_found")
            }
            try await client.execute(uri: "/csc/v1/info", method: .post, body: ByteBuffer(repeating: UInt8(ascii: " "), count: (1 << 20) + 1)) { response in
                #expect(response.status == .contentTooLarge)
                let answer = try self.json(response.body)
                #expect(answer["error"] as? String == "payload_too_large")
            }
            // The activation routes keep their own, smaller limit (64 KiB).
            try await client.execute(uri: "/activation/v1/begin", method: .post, body: ByteBuffer(repeating: UInt8(ascii: " "), count: (64 << 10) + 1)) { response in
                #expect(response.status == .contentTooLarge)
            }
        }
    }

    @Test("the signHash answer written directly is byte for byte what the Codable response encodes to")
    func signaturesFastPath() throws {
        let signatures: [[UInt8]] = [[], [0], [1, 2], [0xFF, 0xFE, 0xFD], (0..<72).map { UInt8($0) }]
        let encoded = try JSONResponse.encode(CSCSignHashResponse(signatures: signatures.map(Base64Text.encode)))
        #expect(JSONResponse.signaturesJSON(signatures) == encoded)
        let response = JSONResponse.signatures(signatures)
        #expect(response.headers[.contentType] == "application/json" && response.headers[.cacheControl] == "no-store")
    }
}
