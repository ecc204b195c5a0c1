import AsyncHTTPClient
import Crypto
import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1
import SigilloDomain
import SigilloServer
import SigilloTestSupport
import Testing

/// The listeners whose documents are checked.
enum Listener: String, CaseIterable, Sendable {
    case `public`, admin, publication
}

/// What a live server answered, recorded for `Tests/Interop/openapi_check.py`.
struct Exchange: Codable, Sendable {
    let listener: String
    let method: String
    let path: String
    let status: Int
    let contentType: String?
    let body: String
}

/// Sends requests to the three listeners of an `AdminServer` started with `pki: true` and keeps every exchange.
final class Traffic: @unchecked Sendable {
    let admin: AdminServer
    private let lock = NSLock()
    private var exchanges: [Exchange] = []

    init(_ admin: AdminServer) {
        self.admin = admin
    }

    struct Answer {
        let status: Int
        let body: Data
        /// Header names in lower case.
        let headers: [String: String]
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: self.body)) as? [String: Any] ?? [:] }
        var text: String { String(decoding: self.body, as: UTF8.self) }
        subscript(key: String) -> String? { self.json[key] as? String }
    }

    /// Sends `method path` to `listener`: a JSON `body` (a dictionary), or `raw` bytes with `contentType`.
    @discardableResult
    func send(_ listener: Listener, _ method: HTTPMethod, _ path: String, _ body: [String: Any]? = nil, raw: Data? = nil, contentType: String? = nil,
              bearer: String? = nil, basic: (String, String)? = nil, form: [String: String]? = nil, headers: [String: String] = [:],
              via: HTTPClient? = nil) async throws -> Answer {
        let base: String
        var client: HTTPClient
        switch listener {
        case .public: (base, client) = (self.admin.server.baseURL, via ?? self.admin.server.client)
        case .admin: (base, client) = (self.admin.baseURL, self.admin.client)
        case .publication: (base, client) = ("http://127.0.0.1:\(try #require(self.admin.server.pkiPort))", self.admin.server.client)
        }
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        } else if let form {
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: form.sorted { $0.key < $1.key }
                .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")))
        } else if let raw {
            request.body = .bytes(ByteBuffer(bytes: raw))
        }
        if let contentType { request.headers.replaceOrAdd(name: "Content-Type", value: contentType) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        if let basic { request.headers.add(name: "Authorization", value: "Basic " + Data("\(basic.0):\(basic.1)".utf8).base64EncodedString()) }
        let response = try await client.execute(request, timeout: .seconds(60))
        let data = Data(buffer: try await response.body.collect(upTo: 1 << 24))
        var names: [String: String] = [:]
        for header in response.headers { names[header.name.lowercased()] = header.value }
        let answer = Answer(status: Int(response.status.code), body: data, headers: names)
        // Binary bodies (DER) are not checked: only their status and content type.
        let textual = response.headers["Content-Type"].first.map { $0.contains("json") || $0.hasPrefix("text/") } ?? true
        self.lock.withLock {
            self.exchanges.append(Exchange(
                listener: listener.rawValue, method: method.rawValue, path: path, status: answer.status, contentType: response.headers["Content-Type"].first,
                body: textual ? answer.text : (data.isEmpty ? "" : "(\(data.count) bytes)")))
        }
        return answer
    }

    /// The exchanges as JSON lines.
    func jsonLines() throws -> Data {
        let encoder = JSONEncoder()
        return try self.lock.withLock {
            var data = Data()
            for exchange in self.exchanges {
                data.append(try encoder.encode(exchange))
                data.append(0x0A)
            }
            return data
        }
    }
}

@Suite("OpenAPI: a document per listener, valid, matching the routes and what the server answers")
struct OpenAPITests {
    static let python = repositoryRoot.appendingPathComponent(".venv/bin/python").path
    static let checker = repositoryRoot.appendingPathComponent("Tests/Interop/openapi_check.py").path

    /// Runs the checker on `documents` (and `exchanges`); its output and exit status.
    static func check(_ documents: [Listener: Data], exchanges: Data? = nil) async throws -> (status: Int32, output: String) {
        try #require(FileManager.default.isExecutableFile(atPath: Self.python), "run `make venv` first (make test does)")
        let directory = try TestHSM.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var arguments = [Self.checker]
        for (listener, data) in documents {
            let file = directory.appendingPathComponent("\(listener.rawValue).json")
            try data.write(to: file)
            arguments += ["--document", "\(listener.rawValue)=\(file.path)"]
        }
        if let exchanges {
            let file = directory.appendingPathComponent("exchanges.jsonl")
            try exchanges.write(to: file)
            arguments += ["--exchanges", file.path]
        }
        return try await runOffPool(Self.python, arguments)
    }

    /// `METHOD /path` of every operation in a served document, path parameters written `{}`.
    static func documented(_ document: Data) throws -> Set<String> {
        let json = try #require(try JSONSerialization.jsonObject(with: document) as? [String: Any])
        let paths = try #require(json["paths"] as? [String: [String: Any]])
        return Set(paths.flatMap { path, item in item.keys.map { "\($0.uppercased()) \(Self.normalized(path))" } })
    }

    /// A route's path with each parameter (`{id}`) and wildcard (`**`, `*`) as `{}`, and a leading slash.
    static func normalized(_ path: String) -> String {
        let segments = path.split(separator: "/").map { segment -> String in
            segment.hasPrefix("{") || segment.hasPrefix("*") ? "{}" : String(segment)
        }
        return "/" + segments.joined(separator: "/")
    }

    /// The routes of a router, as `documented` writes them.
    static func routes<Context>(_ router: Router<Context>) -> Set<String> {
        Set(router.routes.map { "\($0.method.rawValue) \(Self.normalized($0.path.description))" })
    }

    /// What differs between a router and its document: routes not documented, documented operations with no route.
    static func differences(routes: Set<String>, documented: Set<String>) -> (undocumented: [String], unrouted: [String]) {
        (routes.subtracting(documented).sorted(), documented.subtracting(routes).sorted())
    }

    @Test("GET /openapi.json on each listener: OpenAPI 3.1 that openapi-spec-validator accepts, with exactly the listener's routes")
    func documentsMatchRouters() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture, pki: true) { admin in
            let traffic = Traffic(admin)
            var documents: [Listener: Data] = [:]
            for listener in Listener.allCases {
                let answer = try await traffic.send(listener, .GET, "/openapi.json")
                #expect(answer.status == 200)
                documents[listener] = answer.body
            }
            let services = admin.server.services
            let routers: [Listener: Set<String>] = [
                .public: Self.routes(SigilloApplication.router(services: services)),
                .admin: Self.routes(AdminApplication.router(services: services)),
                .publication: Self.routes(PKIApplication.router(services: services)),
            ]
            for listener in Listener.allCases {
                let routes = try #require(routers[listener])
                let documented = try Self.documented(try #require(documents[listener]))
                let (undocumented, unrouted) = Self.differences(routes: routes, documented: documented)
                #expect(undocumented.isEmpty, "\(listener): routes missing from the document: \(undocumented)")
                #expect(unrouted.isEmpty, "\(listener): documented operations without a route: \(unrouted)")
                #expect(routes.count > 3 && routes.contains("GET /openapi.json"))
            }
            // The TSA is configured here: its routes are documented on both listeners that have one.
            let publicDocument = try #require(documents[.public])
            let publicationDocument = try #require(documents[.publication])
            #expect(try Self.documented(publicDocument).contains("POST /csc/v2/signatures/timestamp"))
            #expect(try Self.documented(publicationDocument).contains("POST /tsa"))

            let result = try await Self.check(documents)
            #expect(result.status == 0, "\(result.output)")
            for listener in Listener.allCases {
                #expect(result.output.contains("VALID \(listener.rawValue) "), "\(result.output)")
            }
        }
    }

    @Test("the checks can fail: an undocumented route, a documented operation without route, an invalid document, an undocumented status or member")
    func checksCanFail() async throws {
        // Route parity, both ways.
        let routes: Set<String> = ["GET /openapi.json", "POST /csc/v1/info", "GET /ocsp/{}"]
        #expect(Self.differences(routes: routes, documented: ["GET /openapi.json", "GET /ocsp/{}"]).undocumented == ["POST /csc/v1/info"])
        #expect(Self.differences(routes: routes, documented: routes.union(["PUT /admin/v1/holders/{}/mobile"])).unrouted == ["PUT /admin/v1/holders/{}/mobile"])
        #expect(Self.normalized("/ocsp/**") == Self.normalized("/ocsp/{request}"))

        let document = OpenAPI.publicListener(timeStamps: true).json.encoded()
        let good = try await Self.check([.public: document])
        #expect(good.status == 0, "\(good.output)")
        // Not OpenAPI: a response without its description.
        var broken = try #require(try JSONSerialization.jsonObject(with: document) as? [String: Any])
        var paths = try #require(broken["paths"] as? [String: Any])
        paths["/health"] = ["get": ["responses": ["200": ["content": [:]]]]]
        broken["paths"] = paths
        let invalid = try await Self.check([.public: try JSONSerialization.data(withJSONObject: broken)])
        #expect(invalid.status != 0 && invalid.output.contains("PROBLEM public: not a valid OpenAPI document"), "\(invalid.output)")

        func line(_ method: String, _ path: String, _ status: Int, _ body: String, type: String = "application/json") throws -> Data {
            try JSONEncoder().encode(Exchange(listener: "public", method: method, path: path, status: status, contentType: type, body: body)) + Data("\n".utf8)
        }
        let health = #"{"status":"ok","checks":{}}"#
        let cases: [(Data, String)] = [
            (try line("GET", "/health", 418, health), "status 418 is not documented"),
            (try line("GET", "/health", 200, #"{"status":"ok","checks":{},"uptime":3}"#), "does not match the schema"),
            (try line("GET", "/health", 200, #"{"status":"fine","checks":{}}"#), "does not match the schema"),
            (try line("GET", "/health", 200, health, type: "text/plain"), "content type 'text/plain' is not documented"),
            (try line("POST", "/csc/v3/info", 200, "{}"), "no documented operation"),
            (try line("GET", "/health", 200, health), "was never exercised"),
        ]
        for (exchanges, expected) in cases {
            let result = try await Self.check([.public: document], exchanges: exchanges)
            #expect(result.status != 0 && result.output.contains(expected), "\(expected): \(result.output)")
        }
    }
}

extension OpenAPITests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// The operations answered with no 2xx in `liveServer`, each for a reason written next to it (the 2xx needs a clock
    /// 90 days before expiry, or is the same use case's JSON route, tested with its success).
    static let successNotExercised: Set<String> = [
        "public POST /selfservice/v1/renew",  // renewal opens 90 days before expiry (ReenrolmentTests moves the clock); 409 here
        "public POST /activate/complete",  // the form of POST /activation/v1/complete (201 here); 400 here
        "public POST /recovery/password/sms",  // of POST /recovery/v1/password/sendOTP; 404 here
        "public POST /recovery/password",  // of POST /recovery/v1/password/reset; 400 here
        "public POST /recovery/device",  // of POST /recovery/v1/device/begin; 400 here
        "public POST /recovery/device/confirm",  // of POST /recovery/v1/device/confirm; 404 here
        "public POST /recovery/device/complete",  // of POST /recovery/v1/device/complete; 404 here
        "public POST /recovery/mobile/begin",  // of POST /recovery/v1/mobile/begin; 400 here
        "public POST /recovery/mobile",  // of POST /recovery/v1/mobile/complete; 400 here
        "public POST /oauth2/authorize",  // its success is a 303 to the wallet's redirect URI with the code (used here to sign)
    ]

    @Test("every documented operation of the three listeners, on a live server: a documented status, a body of the documented schema; 2xx for each but the listed few")
    func liveServer() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture, pki: true) { admin in
            let traffic = Traffic(admin)
            let server = admin.server
            let unique = UUID().uuidString.prefix(8).lowercased()
            var documents: [Listener: Data] = [:]
            for listener in Listener.allCases {
                documents[listener] = try await traffic.send(listener, .GET, "/openapi.json").body
            }
            func mails(to recipient: String, containing text: String) async throws -> String {
                let mail = try await server.services.store.mails().last { $0.recipient == recipient && $0.body.contains(text) }
                return try #require(mail.flatMap { CapturingNotifier.linkCode(in: $0.body) }, "no mail to \(recipient) with \(text)")
            }

            // Admin: a holder through the enrolment steps, invited; hardware tokens in the inventory.
            #expect(try await traffic.send(.admin, .GET, "/admin/v1/whoami").status == 200)
            #expect(try await traffic.send(.admin, .GET, "/metrics").status == 200)
            let email = "anna-\(unique)@example.it"
            let mobile = "+39347\(Int.random(in: 1_000_000...9_999_999))"
            let fiscalCode = TestData.fiscalCode()
            let created = try await traffic.send(.admin, .POST, "/admin/v1/holders", [
                "givenName": "Anna", "surname": "Neri", "fiscalCode": fiscalCode, "email": email, "mobile": mobile,
            ])
            #expect(created.status == 201, "\(created.text)")
            let holderID = try #require(created["id"])
            #expect(try await traffic.send(.admin, .POST, "/admin/v1/holders", [
                "givenName": "Anna", "surname": "Neri", "fiscalCode": fiscalCode, "email": email, "mobile": mobile,
            ]).status == 409)
            #expect(try await traffic.send(.admin, .GET, "/admin/v1/holders").status == 200)
            #expect(try await traffic.send(.admin, .GET, "/admin/v1/holders/\(holderID)").status == 200)
            #expect(try await traffic.send(.admin, .GET, "/admin/v1/holders/no-such-holder").status == 404)
            #expect(try await traffic.send(.admin, .PUT, "/admin/v1/holders/\(holderID)/mobile", ["mobile": mobile]).status == 200)
            #expect(try await traffic.send(.admin, .POST, "/admin/v1/holders/\(holderID)/state", ["state": "bogus"]).status == 400)
            #expect(try await traffic.send(.admin, .POST, "/admin/v1/holders/\(holderID)/invite").status == 409)
            for state in ["payment_registered", "awaiting_processing", "awaiting_documents", "recognized"] {
                #expect(try await traffic.send(.admin, .POST, "/admin/v1/holders/\(holderID)/state", ["state": state]).status == 200)
            }
            let invitation = try await traffic.send(.admin, .POST, "/admin/v1/holders/\(holderID)/invite")
            #expect(invitation.status == 201)
            let code = try #require(invitation["activationCode"])
            let inventorySerial = "INV-\(unique)"
            let inventorySeed = Array(SHA256.hash(data: Data(inventorySerial.utf8)).prefix(20))
            let imported = try await traffic.send(.admin, .POST, "/admin/v1/hardware-tokens", raw: Data("\(inventorySerial),\(Self.hex(inventorySeed))\n".utf8), contentType: "text/csv")
            #expect(imported.status == 200, "\(imported.text)")

            // Activation through the JSON routes, with a hardware token whose seed the holder holds.
            var seed = Array(SHA256.hash(data: Data("seed-\(unique)".utf8)).prefix(20))
            var counter: UInt64 = 0
            func otp() -> String {
                defer { counter += 1 }
                return HOTP.code(secret: seed, counter: counter)
            }
            #expect(try await traffic.send(.public, .POST, "/activation/v1/begin", ["code": "no-such-code", "device": "totp"]).status == 404)
            #expect(try await traffic.send(.public, .POST, "/activation/v1/begin", ["code": code, "device": "hotp", "serial": "OWN-\(unique)", "seed": Self.hex(seed)]).status == 200)
            let username = "anna-\(unique)"
            var password = "correct horse battery"
            let activated = try await traffic.send(.public, .POST, "/activation/v1/complete", ["code": code, "username": username, "password": password, "otp": otp()])
            #expect(activated.status == 201, "\(activated.text)")
            let credentialID = try #require(activated["credentialID"])
            let userCode = try #require(activated["userCode"])
            #expect(try await traffic.send(.public, .POST, "/activation/v1/complete", ["code": code, "username": username, "password": password, "otp": "000000"]).status == 410)

            // CSC v1 and v2.
            let digest = Array(SHA256.hash(data: Data("contract".utf8)))
            for version in [1, 2] {
                let csc = "/csc/v\(version)/"
                #expect(try await traffic.send(.public, .POST, csc + "info", [:]).status == 200)
                #expect(try await traffic.send(.public, .POST, csc + "auth/login", basic: (username, password + "x")).status == 401)
                let login = try await traffic.send(.public, .POST, csc + "auth/login", basic: (username, password))
                #expect(login.status == 200)
                let token = try #require(login["access_token"])
                #expect(try await traffic.send(.public, .POST, csc + "credentials/list", [:]).status == 401)
                #expect(try await traffic.send(.public, .POST, csc + "credentials/list", [:], bearer: token).status == 200)
                #expect(try await traffic.send(.public, .POST, csc + "credentials/info", ["credentialID": credentialID, "certificates": "chain", "certInfo": true], bearer: token).status == 200)
                #expect(try await traffic.send(.public, .POST, csc + "credentials/info", ["credentialID": "no-such-credential"], bearer: token).status == 400)
                let authorize: [String: Any] = version == 1
                    ? ["credentialID": credentialID, "numSignatures": 1, "hash": [b64(digest)], "PIN": password, "OTP": otp()]
                    : ["credentialID": credentialID, "numSignatures": 1, "hashes": [b64(digest)], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
                       "authData": [["id": "PIN", "value": password], ["id": "OTP", "value": otp()]]]
                let authorized = try await traffic.send(.public, .POST, csc + "credentials/authorize", authorize, bearer: token)
                #expect(authorized.status == 200, "\(authorized.text)")
                let sad = try #require(authorized["SAD"])
                let extended = try await traffic.send(.public, .POST, csc + "credentials/extendTransaction", ["credentialID": credentialID, "SAD": sad], bearer: token)
                #expect(extended.status == 200, "\(extended.text)")
                #expect(try await traffic.send(.public, .POST, csc + "credentials/extendTransaction", ["credentialID": credentialID, "SAD": "no-such-sad"], bearer: token).status == 400)
                let signed = try await traffic.send(.public, .POST, csc + "signatures/signHash", [
                    "credentialID": credentialID, "SAD": extended["SAD"] ?? "", version == 1 ? "hash" : "hashes": [b64(digest)],
                    version == 1 ? "hashAlgo" : "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2",
                ], bearer: token)
                #expect(signed.status == 200, "\(signed.text)")
                #expect(try await traffic.send(.public, .POST, csc + "credentials/sendOTP", ["credentialID": credentialID], bearer: token).status == 400)
                if version == 2 {
                    #expect(try await traffic.send(.public, .POST, csc + "signatures/timestamp", ["hash": b64(digest), "hashAlgo": "2.16.840.1.101.3.4.2.1"], bearer: token).status == 200)
                    #expect(try await traffic.send(.public, .POST, csc + "signatures/timestamp", ["hash": b64(digest)], bearer: token).status == 400)
                }
                // Every JSON route of this version refuses a malformed body.
                for method in ["info", "auth/login", "auth/revoke", "credentials/list", "credentials/info", "credentials/authorize", "credentials/sendOTP",
                               "credentials/extendTransaction", "signatures/signHash"] + (version == 2 ? ["signatures/timestamp"] : []) {
                    let answer = try await traffic.send(.public, .POST, csc + method, raw: Data("{".utf8), contentType: "application/json", bearer: token)
                    #expect(answer.status == 400, "\(method): \(answer.text)")
                }
                #expect(try await traffic.send(.public, .POST, csc + "auth/revoke", [:], bearer: token).status == 204)
                #expect(try await traffic.send(.public, .POST, csc + "credentials/list", [:], bearer: token).status == 401)
            }

            // An SMS holder asks for codes (credentials/sendOTP, selfservice/v1/sendOTP).
            let sms = try await server.activate(name: "Sara", device: .sms)
            for version in [1, 2] {
                let login = try await traffic.send(.public, .POST, "/csc/v\(version)/auth/login", basic: (sms.username, sms.password))
                let token = try #require(login["access_token"])
                #expect(try await traffic.send(.public, .POST, "/csc/v\(version)/credentials/sendOTP", ["credentialID": sms.credential.id], bearer: token).status == 204)
            }
            #expect(try await traffic.send(.public, .POST, "/selfservice/v1/sendOTP", ["username": sms.username, "password": sms.password, "purpose": "renew"]).status == 200)
            #expect(try await traffic.send(.public, .POST, "/selfservice/v1/sendOTP", ["username": sms.username, "password": sms.password, "purpose": "other"]).status == 400)

            // Self-service and recovery, JSON.
            #expect(try await traffic.send(.public, .POST, "/selfservice/v1/status", ["username": username, "password": password]).status == 200)
            #expect(try await traffic.send(.public, .POST, "/selfservice/v1/renew", ["username": username, "password": password, "otp": otp()]).status == 409)
            #expect(try await traffic.send(.public, .POST, "/recovery/v1/username", ["email": email]).status == 202)
            #expect(try await traffic.send(.public, .POST, "/recovery/v1/password/request", ["account": username]).status == 202)
            let resetCode = try await mails(to: email, containing: "/recovery/password?code=")
            #expect(try await traffic.send(.public, .POST, "/recovery/v1/password/sendOTP", ["code": resetCode]).status == 200)
            #expect(try await traffic.send(.public, .POST, "/recovery/v1/password/sendOTP", ["code": "no-such-code"]).status == 404)
            password = "another good password"
            #expect(try await traffic.send(.public, .POST, "/recovery/v1/password/reset", ["code": resetCode, "otp": otp(), "newPassword": password]).status == 200)
            #expect(try await traffic.send(.public, .POST, "/recovery/v1/password/reset", ["code": resetCode, "otp": otp(), "newPassword": password]).status == 410)
            #expect(try await traffic.send(.public, .POST, "/recovery/v1/device/begin", ["username": username, "password": password, "userCode": userCode]).status == 202)
            let rebindCode = try await mails(to: email, containing: "/recovery/device/confirm?code=")
            #expect(try await traffic.send(.public, .GET, "/recovery/device/confirm?code=\(rebindCode)").status == 200)
            let confirmed = try await traffic.send(.public, .POST, "/recovery/v1/device/confirm", ["code": rebindCode, "device": "hotp", "serial": inventorySerial])
            #expect(confirmed.status == 201, "\(confirmed.text)")
            (seed, counter) = (inventorySeed, 0)
            let rebindToken = try #require(confirmed["token"])
            #expect(try await traffic.send(.public, .POST, "/recovery/v1/device/complete", ["token": rebindToken, "otp": otp()]).status == 200)
            #expect(try await traffic.send(.public, .POST, "/recovery/v1/device/complete", ["token": "no-such-token", "otp": "000000"]).status == 404)
            let newMobile = "+39348\(Int.random(in: 1_000_000...9_999_999))"
            #expect(try await traffic.send(.public, .POST, "/recovery/v1/mobile/begin", ["username": username, "password": password, "mobile": newMobile]).status == 200)
            let codes = try server.lastSMS(2)
            let oldCode = try #require(codes.first { $0.recipient == mobile }?.code)
            let newCode = try #require(codes.first { $0.recipient == newMobile }?.code)
            #expect(try await traffic.send(.public, .POST, "/recovery/v1/mobile/complete", [
                "username": username, "password": password, "otp": oldCode, "newNumberOtp": newCode,
            ]).status == 200)

            // The web pages: each GET, each form (a few to their success, the others to their error page).
            let other = try await traffic.send(.admin, .POST, "/admin/v1/holders", [
                "givenName": "Ugo", "surname": "Neri", "fiscalCode": TestData.fiscalCode(), "email": "ugo-\(unique)@example.it",
                "mobile": "+39349\(Int.random(in: 1_000_000...9_999_999))", "recognized": true,
            ])
            let otherID = try #require(other["id"])
            let otherCode = try #require(try await traffic.send(.admin, .POST, "/admin/v1/holders/\(otherID)/invite")["activationCode"])
            for path in ["/", "/activate?code=\(otherCode)", "/status", "/renew", "/recovery", "/recovery/username", "/recovery/password", "/recovery/device",
                         "/recovery/usercode", "/recovery/mobile"] {
                #expect(try await traffic.send(.public, .GET, path).status == 200, "\(path)")
            }
            for path in ["/activate?code=no-such-code", "/recovery/password?code=no-such-code", "/recovery/device/confirm?code=no-such-code"] {
                #expect(try await traffic.send(.public, .GET, path).status == 404, "\(path)")
            }
            #expect(try await traffic.send(.public, .POST, "/activate/device", form: ["code": otherCode, "device": "totp"]).status == 200)
            #expect(try await traffic.send(.public, .POST, "/status", form: ["username": username, "password": password]).status == 200)
            #expect(try await traffic.send(.public, .POST, "/recovery/username", form: ["email": email]).status == 200)
            #expect(try await traffic.send(.public, .POST, "/recovery/password/request", form: ["account": username]).status == 200)
            let texted = try await server.activate(name: "Tina", device: .sms)
            #expect(try await traffic.send(.public, .POST, "/renew", form: ["username": texted.username, "password": texted.password, "otp": ""]).status == 200)
            #expect(try await traffic.send(.public, .POST, "/recovery/usercode", form: ["username": texted.username, "password": texted.password, "otp": ""]).status == 200)
            for path in ["/activate/device", "/activate/complete", "/status", "/renew", "/recovery/username", "/recovery/password/request", "/recovery/password/sms",
                         "/recovery/password", "/recovery/device", "/recovery/device/confirm", "/recovery/device/complete", "/recovery/usercode",
                         "/recovery/mobile/begin", "/recovery/mobile"] {
                let answer = try await traffic.send(.public, .POST, path, form: [:])
                #expect((400..<500).contains(answer.status) || answer.status == 200, "\(path): \(answer.status)")
            }

            // Health and the relying parties' files, on the public and the publication listeners.
            for path in ["/health", "/health/live", "/health/ready"] {
                #expect(try await traffic.send(.public, .GET, path).status == 200)
            }
            for listener in [Listener.public, .publication] {
                for path in ["/ca.cer", "/ca.p7c", "/crl/ca.crl", "/ocsp/MAMCAQA%3D"] {
                    #expect(try await traffic.send(listener, .GET, path).status == 200, "\(listener) \(path)")
                }
                #expect(try await traffic.send(listener, .POST, "/ocsp", raw: Data([0x30, 0x03, 0x02, 0x01, 0x00]), contentType: "application/ocsp-request").status == 200)
            }
            // A well-formed OCSP request (openssl's) by GET: cacheable, and 304 for its ETag.
            let certificate = try #require(activated["certificate"].flatMap { Data(base64Encoded: $0) })
            let certificateFile = server.directory.appendingPathComponent("openapi-holder.pem")
            try ("-----BEGIN CERTIFICATE-----\n" + certificate.base64EncodedString(options: .lineLength64Characters) + "\n-----END CERTIFICATE-----\n")
                .write(to: certificateFile, atomically: true, encoding: .utf8)
            let requestFile = server.directory.appendingPathComponent("openapi-ocsp.der").path
            let made = try await runOffPool("openssl", ["ocsp", "-issuer", server.caFile, "-cert", certificateFile.path, "-no_nonce", "-reqout", requestFile])
            try #require(made.status == 0, "\(made.output)")
            let encoded = try #require(try Data(contentsOf: URL(fileURLWithPath: requestFile)).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics))
            for listener in [Listener.public, .publication] {
                let first = try await traffic.send(listener, .GET, "/ocsp/\(encoded)")
                let etag = try #require(first.headers["etag"], "\(first.headers)")
                #expect(try await traffic.send(listener, .GET, "/ocsp/\(encoded)", headers: ["If-None-Match": etag]).status == 304)
            }
            #expect(try await traffic.send(.publication, .POST, "/tsa", raw: Data([0x30, 0x00]), contentType: "application/timestamp-query").status == 200)

            // Admin: credentials, a device rebind, the audit log.
            let holder = try await server.activate(name: "Dario")
            let credential = holder.credential.id
            #expect(try await traffic.send(.admin, .GET, "/admin/v1/holders/\(holder.holder.id)/credentials").status == 200)
            #expect(try await traffic.send(.admin, .GET, "/admin/v1/holders/no-such-holder/credentials").status == 404)
            #expect(try await traffic.send(.admin, .POST, "/admin/v1/credentials/\(credential)/suspend").status == 200)
            #expect(try await traffic.send(.admin, .POST, "/admin/v1/credentials/\(credential)/suspend").status == 409)
            #expect(try await traffic.send(.admin, .POST, "/admin/v1/credentials/\(credential)/reinstate").status == 200)
            #expect(try await traffic.send(.admin, .POST, "/admin/v1/credentials/\(credential)/unlock").status == 200)
            #expect(try await traffic.send(.admin, .POST, "/admin/v1/credentials/no-such-credential/unlock").status == 404)
            let rebindSeed = Array(SHA256.hash(data: Data("rebind-\(unique)".utf8)).prefix(20))
            let rebind = try await traffic.send(.admin, .POST, "/admin/v1/holders/\(holder.holder.id)/rebind", ["device": "hotp", "serial": "RB-\(unique)", "seed": Self.hex(rebindSeed)])
            #expect(rebind.status == 201, "\(rebind.text)")
            let operatorToken = try #require(rebind["token"])
            #expect(try await traffic.send(.admin, .POST, "/admin/v1/rebind/complete", ["token": operatorToken, "otp": HOTP.code(secret: rebindSeed, counter: 0)]).status == 200)
            #expect(try await traffic.send(.admin, .POST, "/admin/v1/rebind/complete", ["token": "no-such-token", "otp": "000000"]).status == 404)
            #expect(try await traffic.send(.admin, .POST, "/admin/v1/credentials/\(credential)/revoke", ["reason": "bogus"]).status == 400)
            #expect(try await traffic.send(.admin, .POST, "/admin/v1/credentials/\(credential)/revoke", ["reason": "keyCompromise"]).status == 200)
            #expect(try await traffic.send(.admin, .POST, "/admin/v1/holders/\(otherID)/revoke", ["reason": "cessationOfOperation"]).status == 200)
            for (method, path) in [(HTTPMethod.POST, "lifecycle/run"), (.POST, "keys/migrate"), (.GET, "crl"), (.GET, "audit/verify"), (.POST, "audit/checkpoint"),
                                   (.POST, "audit/anchor/reset"), (.GET, "audit/export"), (.POST, "backup")] {
                let answer = try await traffic.send(.admin, method, "/admin/v1/" + path)
                #expect(answer.status == 200, "\(path): \(answer.text)")
            }

            // Every JSON route with a body, on both listeners, refuses a malformed one with a documented error.
            for (listener, path) in try Self.jsonBodyRoutes(documents, holderID: holderID, credentialID: credential) where !path.hasPrefix("/csc/") {
                let answer = try await traffic.send(listener, .POST, path, raw: Data("{".utf8), contentType: "application/json")
                #expect(answer.status == 400, "\(listener) \(path): \(answer.text)")
            }
            #expect(try await traffic.send(.admin, .PUT, "/admin/v1/holders/\(holderID)/mobile", raw: Data("{".utf8), contentType: "application/json").status == 400)

            // OAuth2 for wallets: a client registered by the operator, discovery, PAR, the holder's page, the code for a credential token that
            // signs its digest without a SAD, revocation; errors of each endpoint. Redirects are not followed (they go to the wallet).
            let redirect = "https://wallet.example/callback"
            let registered = try await traffic.send(.admin, .POST, "/admin/v1/clients", ["name": "Wallet \(unique)", "redirectURIs": [redirect]])
            #expect(registered.status == 201, "\(registered.text)")
            let client = try #require(registered.json["client"] as? [String: Any])
            let clientID = try #require(client["clientID"] as? String)
            let secret = try #require(registered["clientSecret"])
            #expect(try await traffic.send(.admin, .GET, "/admin/v1/clients").status == 200)
            #expect(try await traffic.send(.public, .GET, "/.well-known/oauth-authorization-server").status == 200)
            var configuration = HTTPClient.Configuration(tlsConfiguration: LiveServer.clientTLS(trusting: server.tlsCAFile))
            configuration.redirectConfiguration = .disallow
            let wallet = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            // The client must be shut down whatever happens (AsyncHTTPClient asserts it).
            do {
                let verifier = "verifier-\(unique)-" + String(repeating: "v", count: 43)
                let challenge = b64url(Array(SHA256.hash(data: Data(verifier.utf8))))
                let walletDigest = Array(SHA256.hash(data: Data("wallet document".utf8)))
                let details = #"[{"type":"credential","credentialID":"\#(credentialID)","numSignatures":1,"hashAlgorithmOID":"2.16.840.1.101.3.4.2.1","documentDigests":[{"hash":"\#(b64(walletDigest))","label":"contract.pdf"}]}]"#
                let pushed = try await traffic.send(.public, .POST, "/oauth2/pushed_authorize", form: [
                    "client_id": clientID, "client_secret": secret, "response_type": "code", "redirect_uri": redirect, "state": "s-\(unique)",
                    "code_challenge": challenge, "code_challenge_method": "S256", "authorization_details": details,
                ])
                #expect(pushed.status == 201, "\(pushed.text)")
                let requestURI = try #require(pushed["request_uri"])
                #expect(try await traffic.send(.public, .POST, "/oauth2/pushed_authorize", form: ["client_id": clientID, "client_secret": "wrong"]).status == 401)
                var allowed = CharacterSet.alphanumerics
                allowed.insert(charactersIn: "-._~")
                let page = try await traffic.send(.public, .GET, "/oauth2/authorize?client_id=\(clientID)&request_uri=\(requestURI.addingPercentEncoding(withAllowedCharacters: allowed)!)", via: wallet)
                #expect(page.status == 200, "\(page.text)")
                let transaction = try #require(OAuthEndpointTests.transaction(page.text), "\(page.text)")
                #expect(try await traffic.send(.public, .GET, "/oauth2/authorize?client_id=no-such-client", via: wallet).status == 400)
                #expect(try await traffic.send(.public, .GET, "/oauth2/authorize?client_id=\(clientID)&request_uri=\(requestURI.addingPercentEncoding(withAllowedCharacters: allowed)!)", via: wallet).status == 410)
                #expect(try await traffic.send(.public, .POST, "/oauth2/authorize", form: ["transaction": transaction, "username": username, "password": password + "x", "otp": otp()], via: wallet).status == 400)
                let approved = try await traffic.send(.public, .POST, "/oauth2/authorize", form: ["transaction": transaction, "username": username, "password": password, "otp": otp()], via: wallet)
                #expect(approved.status == 303, "\(approved.text)")
                let authorizationCode = try #require(approved.headers["location"].flatMap(URLComponents.init(string:))?.queryItems?.first { $0.name == "code" }?.value, "\(approved.headers)")
                #expect(try await traffic.send(.public, .POST, "/oauth2/authorize", form: ["transaction": "no-such-transaction"], via: wallet).status == 410)
                let issued = try await traffic.send(.public, .POST, "/oauth2/token", basic: (clientID, secret), form: [
                    "grant_type": "authorization_code", "code": authorizationCode, "redirect_uri": redirect, "code_verifier": verifier,
                ])
                #expect(issued.status == 200, "\(issued.text)")
                let credentialToken = try #require(issued["access_token"])
                #expect(try await traffic.send(.public, .POST, "/oauth2/token", form: ["grant_type": "authorization_code", "code": authorizationCode]).status == 401)
                #expect(try await traffic.send(.public, .POST, "/csc/v2/credentials/list", [:], bearer: credentialToken).status == 403)
                let walletSigned = try await traffic.send(.public, .POST, "/csc/v2/signatures/signHash", [
                    "credentialID": credentialID, "hashes": [b64(walletDigest)], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2",
                ], bearer: credentialToken)
                #expect(walletSigned.status == 200, "\(walletSigned.text)")
                // A code used twice: refused (and the token it gave is revoked, RFC 6749 §4.1.2).
                #expect(try await traffic.send(.public, .POST, "/oauth2/token", basic: (clientID, secret), form: [
                    "grant_type": "authorization_code", "code": authorizationCode, "redirect_uri": redirect, "code_verifier": verifier,
                ]).status == 400)
                #expect(try await traffic.send(.public, .POST, "/oauth2/revoke", basic: (clientID, secret), form: ["token": credentialToken]).status == 200)
                #expect(try await traffic.send(.public, .POST, "/oauth2/revoke", basic: (clientID, secret), form: [:]).status == 400)
            } catch {
                try? await wallet.shutdown()
                throw error
            }
            try await wallet.shutdown()
            // v2 credentials/list with each credential's details (what wallets parse).
            let listed = try await traffic.send(.public, .POST, "/csc/v2/auth/login", basic: (username, password))
            let listToken = try #require(listed["access_token"])
            let detailed = try await traffic.send(.public, .POST, "/csc/v2/credentials/list", ["credentialInfo": true, "certificates": "chain", "certInfo": true,
                                                                                              "authInfo": true, "onlyValid": true], bearer: listToken)
            #expect(detailed.status == 200 && (detailed.json["credentialInfos"] as? [Any])?.count == 1, "\(detailed.text)")
            #expect(try await traffic.send(.admin, .DELETE, "/admin/v1/clients/\(clientID)").status == 200)
            #expect(try await traffic.send(.admin, .DELETE, "/admin/v1/clients/\(clientID)").status == 404)

            // Last: the holder's emergency actions with the user code.
            #expect(try await traffic.send(.public, .POST, "/selfservice/v1/suspend", ["username": username, "userCode": userCode]).status == 200)
            #expect(try await traffic.send(.public, .POST, "/selfservice/v1/revoke", ["username": username, "userCode": userCode]).status == 200)

            let result = try await Self.check(documents, exchanges: try traffic.jsonLines())
            #expect(result.status == 0, "\(result.output)")
            let missing = Set(result.output.split(separator: "\n").filter { $0.hasPrefix("SUCCESS-MISSING ") }.map { String($0.dropFirst("SUCCESS-MISSING ".count)) })
            #expect(missing == Self.successNotExercised, "answered without a 2xx: \(missing.sorted())")
        }
    }

    /// The POST routes of the documents whose body is JSON, path parameters filled in.
    static func jsonBodyRoutes(_ documents: [Listener: Data], holderID: String, credentialID: String) throws -> [(Listener, String)] {
        var routes: [(Listener, String)] = []
        for (listener, data) in documents {
            let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            for (path, item) in try #require(json["paths"] as? [String: [String: Any]]) {
                guard let post = item["post"] as? [String: Any], let body = post["requestBody"] as? [String: Any],
                      let content = body["content"] as? [String: Any], content["application/json"] != nil else { continue }
                let id = path.hasPrefix("/admin/v1/credentials/") ? credentialID : holderID
                routes.append((listener, path.replacingOccurrences(of: "{id}", with: id)))
            }
        }
        return routes.sorted { "\($0.0)\($0.1)" < "\($1.0)\($1.1)" }
    }
}
