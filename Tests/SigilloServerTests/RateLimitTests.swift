import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
@testable import SigilloServer
import SigilloDomain
import SigilloTestSupport
import Testing

/// One answer of the public listener: status, `Retry-After`, content type and body.
struct LimitedAnswer: Sendable {
    let status: Int
    let retryAfter: String?
    let contentType: String?
    let bytes: [UInt8]
    var body: String { String(decoding: self.bytes, as: UTF8.self) }
    var error: String? { (try? JSONSerialization.jsonObject(with: Data(self.body.utf8)) as? [String: Any])?["error"] as? String }
}

/// A client of its own with room for many connections at once (AsyncHTTPClient's default is 8 per host), so that
/// 30 requests are 30 concurrent TLS connections.
struct ConcurrentClient {
    let client: HTTPClient
    let baseURL: String

    init(_ server: LiveServer, port: Int? = nil) {
        var configuration = HTTPClient.Configuration(tlsConfiguration: LiveServer.clientTLS(trusting: server.tlsCAFile))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.baseURL = "https://127.0.0.1:\(port ?? server.port)"
    }

    func send(_ path: String, method: HTTPMethod = .POST, json: [String: Any]? = nil, form: [String: String]? = nil, der: [UInt8]? = nil,
              headers: [(String, String)] = []) async throws -> LimitedAnswer {
        var request = HTTPClientRequest(url: self.baseURL + path)
        request.method = method
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json)))
        } else if let form {
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            let body = form.sorted { $0.key < $1.key }
                .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
            request.body = .bytes(ByteBuffer(string: body))
        } else if let der {
            request.headers.add(name: "Content-Type", value: "application/ocsp-request")
            request.body = .bytes(ByteBuffer(bytes: der))
        }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await self.client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 1 << 22)
        return LimitedAnswer(status: Int(response.status.code), retryAfter: response.headers.first(name: "Retry-After"),
                             contentType: response.headers.first(name: "Content-Type"), bytes: Array(buffer: bytes))
    }

    func shutdown() async throws { try await self.client.shutdown() }
}

/// `count` concurrent calls of `body`.
func allAtOnce<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) async throws -> T) async throws -> [T] {
    try await withThrowingTaskGroup(of: T.self) { group in
        for index in 0..<count { group.addTask { try await body(index) } }
        var results: [T] = []
        for try await result in group { results.append(result) }
        return results
    }
}

@Suite("Abuse bounds: anonymous routes rate-limited per address and per account, over TLS")
struct RateLimitTests {
    static func limits(perAddress: Int, perAccount: Int) -> RateLimitSettings {
        var limits = RateLimitSettings()
        limits.perAddress = perAddress
        limits.perAccount = perAccount
        return limits
    }

    /// A second node: another listener (own in-memory limits) on the same store, token and CA as `server`.
    static func withSecondNode<T: Sendable>(_ server: LiveServer, rateLimits: RateLimitSettings, _ body: @Sendable (Int) async throws -> T) async throws -> T {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.tlsCertificate = server.directory.appendingPathComponent("server.pem").path
        configuration.tlsKey = server.directory.appendingPathComponent("server-key.pem").path
        configuration.rateLimits = rateLimits
        var logger = Logger(label: "second-node")
        logger.logLevel = .warning
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = try SigilloApplication.make(configuration: configuration, services: server.services, logger: logger) { channel in
            continuation.yield(channel.localAddress?.port ?? 0)
            continuation.finish()
        }
        let unused = HTTPClient(eventLoopGroupProvider: .singleton)
        return try await LiveServer.serve(app, ports: ports, client: unused, body)
    }

    @Test("per address: of 30 concurrent anonymous requests from one address 5 pass, 25 get 429 + Retry-After; X-Forwarded-For ignored; other routes free")
    func perAddress() async throws {
        let fixture = try TestToken()
        let clock = TestClock()
        try await LiveServer.with(fixture, clock: clock.serviceClock, rateLimits: Self.limits(perAddress: 5, perAccount: 0)) { server in
            let client = ConcurrentClient(server)
            let store = server.services.store
            let before = try await store.auditRecords().count
            // Each claims another address: not believed, no proxy is trusted.
            let answers = try await allAtOnce(30) { index in
                try await client.send("/recovery/v1/username", json: ["email": "nobody\(index)@example.it"], headers: [("X-Forwarded-For", "198.51.100.\(index)")])
            }
            #expect(answers.filter { $0.status == 202 }.count == 5, "\(answers.map(\.status))")
            let refused = answers.filter { $0.status == 429 }
            #expect(refused.count == 25)
            // 5 per minute: the next token in 12 s.
            #expect(refused.allSatisfy { $0.retryAfter == "12" && $0.error == "too_many_requests" && $0.contentType == "application/json" })

            // Only 5 reached the use case; the audit has one row of each kind, the rest is counted.
            let rows = try await store.auditRecords().dropFirst(before).map(\.event)
            #expect(rows.filter { $0.action == "recovery.username" }.count == 1, "\(rows)")
            #expect(rows.filter { $0.action == "ratelimit" && $0.target == "address" && $0.outcome == "throttled" }.count == 1, "\(rows)")
            #expect(server.services.domain.audit.aggregator.pendingCount == 4 + 24)

            // The same address on the web form: the error page, 429, Retry-After.
            let page = try await client.send("/recovery/username", form: ["email": "x@example.it"])
            #expect(page.status == 429 && page.retryAfter == "12" && page.contentType?.hasPrefix("text/html") == true && page.body.contains("too_many_requests"))
            // Login, activation and self-service share the budget.
            #expect(try await client.send("/csc/v2/auth/login", headers: [("Authorization", "Basic " + Data("a:b".utf8).base64EncodedString())]).status == 429)
            #expect(try await client.send("/activation/v1/begin", json: ["code": "x", "device": "totp"]).status == 429)
            #expect(try await client.send("/selfservice/v1/suspend", json: ["username": "x", "userCode": "y"]).status == 429)
            #expect(try await client.send("/activate?code=guess", method: .GET).status == 429)
            // Not anonymous, or nothing to guess: not counted.
            #expect(try await client.send("/health/live", method: .GET).status == 200)
            #expect(try await client.send("/csc/v1/info", json: [:]).status == 200)
            #expect(try await client.send("/recovery/username", method: .GET).status == 200)
            #expect(try await client.send("/csc/v1/credentials/list", json: [:]).status == 401)

            // 12 s later one token is back: one request passes, the next waits again.
            clock.advance(12)
            #expect(try await client.send("/recovery/v1/username", json: ["email": "later@example.it"]).status == 202)
            #expect(try await client.send("/recovery/v1/username", json: ["email": "later2@example.it"]).status == 429)

            // A minute on, the counted ones are summed up: one row per kind.
            clock.advance(60)
            try await server.services.domain.audit.flushAggregated()
            // (Refusals are grouped by route family: the 25 + 1 JSON recovery ones, and the second web one.)
            let summaries = try await store.auditRecords().dropFirst(before).map(\.event).filter { $0.details.hasPrefix("aggregated:") }
            #expect(summaries.count == 3, "\(summaries)")
            #expect(summaries.contains { $0.action == "recovery.username" && $0.details.hasPrefix("aggregated: 5 more") }, "\(summaries)")
            #expect(summaries.contains { $0.action == "ratelimit" && $0.details.hasPrefix("aggregated: 25 more") && $0.details.hasSuffix("; recovery") }, "\(summaries)")
            #expect(summaries.contains { $0.action == "ratelimit" && $0.details.hasPrefix("aggregated: 1 more") && $0.details.hasSuffix("; web") }, "\(summaries)")
            try await client.shutdown()
        }
    }

    @Test("per account across two nodes: 30 concurrent logins for one name, 10 evaluated, 20 × 429; the name is not stored in clear")
    func perAccountAcrossNodes() async throws {
        let fixture = try TestToken()
        let clock = TestClock()
        let limits = Self.limits(perAddress: 0, perAccount: 10)
        try await LiveServer.with(fixture, clock: clock.serviceClock, rateLimits: limits) { server in
            let account = try await server.activate(name: "Mario")
            let ghost = "ghost-\(UUID().uuidString.prefix(8).lowercased())"
            try await Self.withSecondNode(server, rateLimits: limits) { secondPort in
                let first = ConcurrentClient(server)
                let second = ConcurrentClient(server, port: secondPort)
                // Case and spaces do not make another account.
                let spellings = [ghost, ghost.uppercased(), " \(ghost)"]
                let answers = try await allAtOnce(30) { index in
                    let basic = Data("\(spellings[index % 3]):wrong password \(index)".utf8).base64EncodedString()
                    return try await (index % 2 == 0 ? first : second).send("/csc/v1/auth/login", headers: [("Authorization", "Basic \(basic)")])
                }
                #expect(answers.filter { $0.status == 429 }.count == 20, "\(answers.map(\.status))")
                #expect(answers.filter { $0.status != 429 }.count == 10)
                #expect(answers.filter { $0.status == 429 }.allSatisfy { $0.retryAfter == "60" && $0.error == "too_many_requests" })

                // The same account on other routes and forms, on either node: refused too.
                #expect(try await second.send("/selfservice/v1/status", json: ["username": ghost, "password": "x"]).status == 429)
                #expect(try await first.send("/status", form: ["username": ghost.uppercased(), "password": "x"]).status == 429)
                #expect(try await first.send("/recovery/v1/password/request", json: ["account": ghost]).status == 429)
                // A field of the wrong type does not hide the account.
                #expect(try await first.send("/selfservice/v1/suspend", json: ["username": ghost, "userCode": 5]).status == 429)
                // Another account from the same address is not held back.
                let login = try await second.send("/csc/v1/auth/login", headers: [("Authorization", "Basic " + Data("\(account.username):\(account.password)".utf8).base64EncodedString())])
                #expect(login.status == 200, "\(login)")

                // The window moves on: the account may try again.
                clock.advance(61)
                #expect(try await first.send("/selfservice/v1/status", json: ["username": ghost, "password": "x"]).status != 429)
                try await first.shutdown()
                try await second.shutdown()
            }
            // Counts whose window is over are purged, whatever their key: Mario's, never asked for again, and the ghost's last.
            #expect(try await server.services.store.purgeThrottles(now: clock.now.addingTimeInterval(61)) >= 2)
            #expect(try await server.services.store.purgeThrottles(now: clock.now.addingTimeInterval(61)) == 0)
            // Counted by a digest: the name people typed is nowhere in the database files.
            let database = server.directory.appendingPathComponent("sigillo.sqlite").path
            for path in [database, database + "-wal"] where FileManager.default.fileExists(atPath: path) {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                #expect(bytes.range(of: Data(ghost.utf8)) == nil, "\(path) holds the account name")
            }
        }
    }

    @Test("the defaults: 30 requests a minute per address, then 429")
    func defaults() async throws {
        let fixture = try TestToken()
        let clock = TestClock()
        let defaults = ServerConfiguration().rateLimits
        #expect(defaults.perAddress == 30 && defaults.perAccount == 10 && defaults.window == 60 && defaults.trustedProxies.isEmpty)
        try await LiveServer.with(fixture, clock: clock.serviceClock, rateLimits: defaults) { server in
            let client = ConcurrentClient(server)
            let answers = try await allAtOnce(31) { index in try await client.send("/recovery/v1/username", json: ["email": "n\(index)@example.it"]) }
            #expect(answers.filter { $0.status == 202 }.count == 30)
            #expect(answers.filter { $0.status == 429 }.map(\.retryAfter) == ["2"])
            try await client.shutdown()
        }
    }

    @Test("a trusted proxy's X-Forwarded-For names the client: each client its own budget")
    func trustedProxy() async throws {
        let fixture = try TestToken()
        var limits = Self.limits(perAddress: 2, perAccount: 0)
        limits.trustedProxies = ["127.0.0.1"]
        try await LiveServer.with(fixture, clock: TestClock().serviceClock, rateLimits: limits) { server in
            let client = ConcurrentClient(server)
            let answers = try await allAtOnce(30) { index in
                // 10 clients, 3 requests each; the leftmost entry is the client's own claim, not believed.
                try await client.send("/recovery/v1/username", json: ["email": "p\(index)@example.it"],
                                      headers: [("X-Forwarded-For", "203.0.113.\(index), 198.51.100.\(index % 10)")])
            }
            #expect(answers.filter { $0.status == 202 }.count == 20)
            #expect(answers.filter { $0.status == 429 }.count == 10)
            try await client.shutdown()
        }
    }

    @Test("300 anonymous username requests (no limits) add one audit row, and one summary a minute later")
    func auditRowsBounded() async throws {
        let fixture = try TestToken()
        let clock = TestClock()
        try await LiveServer.with(fixture, clock: clock.serviceClock) { server in
            let client = ConcurrentClient(server)
            let store = server.services.store
            let before = try await store.auditRecords().count
            for batch in 0..<10 {
                let answers = try await allAtOnce(30) { index in
                    try await client.send("/recovery/v1/username", json: ["email": "n\(batch)-\(index)@example.it"])
                }
                #expect(answers.allSatisfy { $0.status == 202 })
            }
            #expect(try await store.auditRecords().count == before + 1)
            clock.advance(60)
            try await server.services.domain.audit.flushAggregated()
            let rows = try await store.auditRecords().dropFirst(before).map(\.event)
            #expect(rows.count == 2 && rows.last?.details.hasPrefix("aggregated: 299 more") == true, "\(rows)")
            try await client.shutdown()
        }
    }

    // MARK: Parts

    @Test("which routes are anonymous: decoded, case-folded, empty segments skipped")
    func routes() {
        typealias M = RateLimitMiddleware
        #expect(M.route(method: .post, path: "/csc/v1/auth/login") == .cscLogin)
        #expect(M.route(method: .post, path: "//CSC/v2/auth/%6Cogin/") == .cscLogin)
        #expect(M.route(method: .post, path: "/csc/v1/credentials/list") == nil)
        #expect(M.route(method: .post, path: "/csc/v1/info") == nil)
        #expect(M.route(method: .post, path: "//Recovery/v1/%75sername/") == .api("recovery"))
        #expect(M.route(method: .post, path: "/selfservice/v1/revoke") == .api("selfservice"))
        #expect(M.route(method: .post, path: "/activation/v1/begin") == .api("activation"))
        #expect(M.route(method: .post, path: "/status") == .web)
        #expect(M.route(method: .post, path: "/recovery/device/complete") == .web)
        #expect(M.route(method: .get, path: "/activate") == .web)
        #expect(M.route(method: .get, path: "/recovery/password") == .web)
        #expect(M.route(method: .get, path: "/status") == nil)
        #expect(M.route(method: .get, path: "/recovery/username") == nil)
        // The holder's OAuth2 page (its GET looks requests up, its POST checks secrets); the client-authenticated endpoints are not.
        #expect(M.route(method: .get, path: "/oauth2/authorize") == .web)
        #expect(M.route(method: .post, path: "//OAuth2/%61uthorize/") == .web)
        #expect(M.route(method: .post, path: "/oauth2/token") == nil)
        #expect(M.route(method: .post, path: "/oauth2/pushed_authorize") == nil)
        for path in ["/health/ready", "/ocsp", "/crl/ca.crl", "/ca.cer", "/", "/csc"] {
            #expect(M.route(method: .post, path: path) == nil, "\(path)")
        }
    }

    @Test("client addresses: IPv6 by /64, IPv4-mapped as IPv4, X-Forwarded-For only from a trusted proxy")
    func clientAddresses() throws {
        let settings = RateLimitSettings()
        let peer = { (text: String) in try SocketAddress(ipAddress: text, port: 4000) }
        let key = { (text: String, forwarded: String?, trusted: Set<[UInt8]>) in
            ClientAddress.of(peer: try peer(text), forwardedFor: forwarded, settings: settings, trusted: trusted).key
        }
        #expect(try key("2001:db8:1:2:aaaa::1", nil, []) == key("2001:db8:1:2:ffff:ffff:ffff:ffff", nil, []))
        #expect(try key("2001:db8:1:2::1", nil, []) != key("2001:db8:1:3::1", nil, []))
        #expect(try key("::ffff:192.0.2.7", nil, []) == "4:192.0.2.7")
        #expect(try key("192.0.2.7", "198.51.100.1", []) == "4:192.0.2.7")
        let proxies = Set(["192.0.2.7", "192.0.2.8"].compactMap(ClientAddress.parse))
        #expect(try key("192.0.2.7", "203.0.113.9, 198.51.100.1, 192.0.2.8", proxies) == "4:198.51.100.1")
        #expect(try key("192.0.2.7", "[2001:db8::5]:443", proxies) == key("2001:db8::9", nil, []))
        #expect(try key("192.0.2.7", "not an address", proxies) == "4:192.0.2.7")
        #expect(ClientAddress.of(peer: nil, forwardedFor: nil, settings: settings, trusted: []).key == "unknown")
    }

    @Test("the address table stays bounded against many addresses, and a busy address keeps its empty bucket")
    func boundedAddresses() {
        let clock = TestClock()
        let limiter = AddressRateLimiter(capacity: 3, window: 60, maxEntries: 1_000, clock: clock.serviceClock)
        for _ in 0..<3 { #expect(limiter.admit("attacker") == .admitted) }
        for index in 0..<100_000 {
            clock.advance(0.000_1)
            _ = limiter.admit("spray-\(index)")
            #expect(limiter.count <= 1_000)
            if index % 500 == 0 { _ = limiter.admit("attacker") }
        }
        #expect(limiter.admit("attacker") != .admitted)
        clock.advance(20)
        #expect(limiter.admit("attacker") == .admitted)
    }

    @Test("configuration: rateLimits from the file and environment, unknown or wrong fields refused")
    func configuration() throws {
        let json = #"{"rateLimits": {"perAddress": 100, "perAccount": 7, "window": 120, "trustedProxies": ["10.0.0.1", "::1"]}}"#
        var configuration = try JSONDecoder().decode(ServerConfiguration.self, from: Data(json.utf8))
        #expect(configuration.rateLimits.perAddress == 100 && configuration.rateLimits.perAccount == 7 && configuration.rateLimits.window == 120)
        #expect(configuration.rateLimits.trustedProxies == ["10.0.0.1", "::1"] && configuration.rateLimits.maxTrackedAddresses == 100_000)
        try configuration.apply(environment: ["SIGILLO_RATE_LIMIT_PER_ADDRESS": "0", "SIGILLO_RATE_LIMIT_PER_ACCOUNT": "3"])
        #expect(configuration.rateLimits.perAddress == 0 && configuration.rateLimits.perAccount == 3)
        #expect(throws: (any Error).self) { try configuration.apply(environment: ["SIGILLO_RATE_LIMIT_PER_ADDRESS": "-1"]) }
        for bad in [#"{"rateLimits": {"perAdress": 1}}"#, #"{"rateLimits": {"window": 0}}"#, #"{"rateLimits": {"trustedProxies": ["proxy.example"]}}"#,
                    #"{"rateLimits": {"ipv6PrefixLength": 129}}"#] {
            #expect(throws: (any Error).self, "\(bad)") { try JSONDecoder().decode(ServerConfiguration.self, from: Data(bad.utf8)) }
        }
        // What a benchmark or test writes for `sigillo serve` reads back the same.
        var unlimited = ServerConfiguration()
        unlimited.rateLimits = .unlimited
        #expect(try JSONDecoder().decode(ServerConfiguration.self, from: JSONEncoder().encode(unlimited)) == unlimited)
    }
}
