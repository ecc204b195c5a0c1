import Foundation
import Logging
import SigilloDomain
import SigilloServer
import SigilloTestSupport
import Testing

@Suite("Structured logs: --log-format json, request ids, no secret in the log")
struct StructuredLogTests {
    @Test("a JSON log line: time, level, label, message, metadata in that order, nested metadata, escaping")
    func jsonLine() throws {
        let time = Date(timeIntervalSince1970: 1_764_543_948.125)
        let line = JSONLogHandler.line(time: time, level: .warning, label: "sigillo", message: "a \"quoted\"\nline\u{1}", metadata: [
            "hb.request.id": "r-1", "list": ["a", "b"], "nested": ["status": .stringConvertible(403)],
        ])
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
        #expect(line.hasPrefix("{\"time\":\"2025-11-30T23:05:48.125Z\",\"level\":\"warning\",\"label\":\"sigillo\",\"message\":"), "\(line)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "a \"quoted\"\nline\u{1}")
        let metadata = try #require(object["metadata"] as? [String: Any])
        #expect(metadata["hb.request.id"] as? String == "r-1")
        #expect(metadata["list"] as? [String] == ["a", "b"])
        #expect((metadata["nested"] as? [String: Any])?["status"] as? String == "403")
    }

    @Test("sigillo serve --log-format json: activation, login, authorize, signHash and a wrong password leave ids on every listener's answers and no secret in the log")
    func fullRunLog() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: AdminCLITests.binary), "build the executable first: swift build")
        let fixture = try TestToken.unopened()
        let directory = fixture.directory
        let certs = directory.appendingPathComponent("certs")
        try LiveServer.makeCertificates(in: certs)
        let ports = try ReservedPorts(count: 3)
        let base = ports.base
        var environment = AdminCLITests.serveEnvironment(try fixture.isolatedEnvironment(), folder: directory, module: TestHSM.modulePath,
                                                         token: fixture.label, pinFile: fixture.pinFile, sessions: 1)
        environment["SIGILLO_PORT"] = String(base)
        environment["SIGILLO_ADMIN_PORT"] = String(base + 1)
        environment["SIGILLO_PKI_PORT"] = String(base + 2)
        environment["SIGILLO_PKI_URL"] = "http://127.0.0.1:\(base + 2)"
        environment["SIGILLO_MAIL_FILE"] = directory.appendingPathComponent("var/mail.jsonl").path
        let initialized = try await runOffPool(AdminCLITests.binary, ["ca", "init", "--algorithm", "ecdsa-p256"], environment: environment)
        try #require(initialized.status == 0, "\(initialized.output)")

        let badFormat = try await runOffPool(AdminCLITests.binary, ["serve", "--log-format", "xml"], environment: environment)
        #expect(badFormat.status != 0 && badFormat.output.contains("log-format"), "\(badFormat.output)")

        ports.release()
        // Trace: the most the server ever logs about a request.
        let serve = try LoggedProcess(AdminCLITests.binary, ["serve", "--log-level", "trace", "--log-format", "json"], environment: environment)
        defer { serve.kill() }
        for port in [base, base + 1, base + 2] {
            try await serve.waitForLine(containing: "listening on 127.0.0.1:\(port)", limit: .seconds(300))
        }
        let tlsCA = certs.appendingPathComponent("tls-ca.pem").path
        let publicURL = "https://127.0.0.1:\(base)"
        let adminConnection = ["--url", "https://127.0.0.1:\(base + 1)", "--cert", certs.appendingPathComponent("operator.pem").path,
                               "--key", certs.appendingPathComponent("operator-key.pem").path, "--ca", tlsCA]
        func sigillo(_ arguments: [String], input: String? = nil) async throws -> String {
            let result = try await runOffPool(AdminCLITests.binary, arguments, environment: TestHSM.environment, input: input.map { Data($0.utf8) })
            try #require(result.status == 0, "sigillo \(arguments.prefix(3)): \(result.output)")
            return result.output
        }

        // The operator enrols a holder and invites them; the holder activates with a password and an OTP.
        let created = try await sigillo(["admin", "holders", "create", "--given-name", "Lia", "--surname", "Conti", "--fiscal-code", TestData.fiscalCode(),
                                         "--email", "lia@example.it", "--mobile", "+393401234567", "--json"] + adminConnection)
        let holderID = try #require((try JSONSerialization.jsonObject(with: Data(created.utf8)) as? [String: Any])?["id"] as? String)
        for step in ["payment_registered", "awaiting_processing", "awaiting_documents", "recognized"] {
            _ = try await sigillo(["admin", "holders", "advance", holderID, "--to", step] + adminConnection)
        }
        let invited = try await sigillo(["admin", "invite", holderID] + adminConnection)
        let activationCode = try #require(invited.split(separator: "\n").first { $0.hasPrefix("activation code: ") }?.dropFirst("activation code: ".count))
        let begun = try await sigillo(["activate", "begin", "--code", String(activationCode), "--json", "--server", publicURL, "--ca", tlsCA])
        let secretText = try #require((try JSONSerialization.jsonObject(with: Data(begun.utf8)) as? [String: Any])?["secret"] as? String)
        var totp = TOTPDevice(secret: try #require(Base32.decode(secretText)))
        let password = "lia's \(UUID().uuidString.prefix(12)) passphrase"
        let activationOTP = await totp.next()
        let activated = try await sigillo(["activate", "complete", "--code", String(activationCode), "--username", "lia", "--password-stdin",
                                           "--server", publicURL, "--ca", tlsCA], input: "\(password)\n\(activationOTP)\n")
        let userCode = activated.split(separator: "\n").first { $0.contains("user code") }.flatMap { $0.split(separator: " ").last }.map(String.init)

        // CSC: a wrong password, then login, authorize with password + OTP, signHash; one request with its own id.
        let wrongPassword = "not \(UUID().uuidString.prefix(12)) it"
        let refused = try await Self.request("\(publicURL)/csc/v1/auth/login", tlsCA: tlsCA, basic: "lia:\(wrongPassword)")
        #expect(refused.status == 400 || refused.status == 401, "\(refused.body)")
        let login = try await Self.request("\(publicURL)/csc/v1/auth/login", tlsCA: tlsCA, basic: "lia:\(password)")
        let accessToken = try #require(login.json["access_token"] as? String, "\(login.body)")
        let list = try await Self.request("\(publicURL)/csc/v1/credentials/list", tlsCA: tlsCA, bearer: accessToken)
        let credentialID = try #require((list.json["credentialIDs"] as? [String])?.first, "\(list.body)")
        let digest = Data((0..<32).map { UInt8($0) }).base64EncodedString()
        let authorizeOTP = await totp.next()
        let authorized = try await Self.request("\(publicURL)/csc/v1/credentials/authorize", tlsCA: tlsCA, bearer: accessToken, json: [
            "credentialID": credentialID, "numSignatures": 1, "hash": [digest], "PIN": password, "OTP": authorizeOTP,
        ])
        let sad = try #require(authorized.json["SAD"] as? String, "\(authorized.body)")
        let signed = try await Self.request("\(publicURL)/csc/v1/signatures/signHash", tlsCA: tlsCA, bearer: accessToken, json: [
            "credentialID": credentialID, "SAD": sad, "hash": [digest], "hashAlgo": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2",
        ], requestID: "client-7f3a:run-1")
        #expect((signed.json["signatures"] as? [String])?.count == 1, "\(signed.body)")
        #expect(signed.requestID == "client-7f3a:run-1")

        // Every answer has an id: distinct generated ones, an incoming one that is not sane replaced, on all three listeners.
        for answer in [refused, login, list, authorized] { #expect(answer.requestID?.isEmpty == false, "\(answer.headers)") }
        #expect(Set([refused, login, list, authorized].compactMap(\.requestID)).count == 4)
        let insane = try await Self.request("\(publicURL)/health", tlsCA: tlsCA, requestID: "two words")
        #expect(insane.status == 200 && insane.requestID != nil && insane.requestID != "two words")
        let admin = try await Self.request("https://127.0.0.1:\(base + 1)/admin/v1/whoami", tlsCA: tlsCA, requestID: "admin-1",
                                           client: (certs.appendingPathComponent("operator.pem").path, certs.appendingPathComponent("operator-key.pem").path))
        #expect(admin.status == 200 && admin.requestID == "admin-1", "\(admin.headers)")
        let caCertificate = try await Self.request("http://127.0.0.1:\(base + 2)/ca.cer", requestID: "pki-1")
        #expect(caCertificate.status == 200 && caCertificate.requestID == "pki-1", "\(caCertificate.headers)")
        let unknown = try await Self.request("http://127.0.0.1:\(base + 2)/nothing-here")
        #expect(unknown.status == 404 && unknown.requestID?.isEmpty == false, "\(unknown.headers)")

        #expect(await serve.terminate() == 0)
        let lines = serve.output.split(separator: "\n").filter { !$0.isEmpty }
        // Every line is one JSON object with the five fields.
        var objects: [[String: Any]] = []
        for line in lines {
            let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
            #expect(object != nil && ["time", "level", "label", "message", "metadata"].allSatisfy { object?[$0] != nil }, "not a JSON log line: \(line)")
            if let object { objects.append(object) }
        }
        // The service group names its services, nothing of their state (the default description prints every field).
        let services = objects.compactMap { ($0["metadata"] as? [String: Any])?["sl-service"] as? String }
        #expect(!services.isEmpty && services.allSatisfy { !$0.contains("(") }, "\(services)")
        func requests(id: String) -> [[String: Any]] {
            objects.filter { ($0["metadata"] as? [String: Any])?["hb.request.id"] as? String == id && $0["message"] as? String == "request" }
        }
        let signHashLine = try #require(requests(id: "client-7f3a:run-1").first?["metadata"] as? [String: Any], "no request line with the client's id")
        #expect(signHashLine["route"] as? String == "/csc/v1/signatures/signHash" && signHashLine["status"] as? String == "200")
        #expect((requests(id: try #require(refused.requestID)).first?["metadata"] as? [String: Any])?["status"] as? String == "\(refused.status)")
        #expect(requests(id: "admin-1").count == 1 && requests(id: "pki-1").count == 1)
        let adminRoutes = objects.compactMap { ($0["metadata"] as? [String: Any])?["route"] as? String }.filter { $0.hasPrefix("/admin/v1/holders/") }
        #expect(!adminRoutes.isEmpty && adminRoutes.allSatisfy { !$0.contains(holderID) }, "routes as matched, not paths: \(adminRoutes)")

        // No secret of the run anywhere in the log: passwords (also in base64, as in Basic credentials), OTPs (as whole
        // numbers), the SAD, the access token, the token PIN, the OTP secret, the activation and user codes.
        let log = serve.output
        var secrets = [password, wrongPassword, sad, accessToken, fixture.userPIN, secretText, String(activationCode)]
        // The passwords as an Authorization: Basic header carries them.
        secrets += ["lia:\(password)", "lia:\(wrongPassword)"].map { Data($0.utf8).base64EncodedString() }
        if let userCode { secrets.append(userCode) }
        for secret in secrets {
            #expect(!log.contains(secret), "the log holds a secret of the run: \(secret)")
        }
        for otp in [activationOTP, authorizeOTP] {
            #expect(!Self.containsNumber(otp, in: log), "the log holds the OTP \(otp)")
        }
    }

    /// Whether `number` appears in `text` as a whole number (no letter or digit either side).
    static func containsNumber(_ number: String, in text: String) -> Bool {
        var searchRange = text.startIndex..<text.endIndex
        while let found = text.range(of: number, range: searchRange) {
            let before = found.lowerBound > text.startIndex ? text[text.index(before: found.lowerBound)] : " "
            let after = found.upperBound < text.endIndex ? text[found.upperBound] : " "
            if !before.isLetter, !before.isNumber, !after.isLetter, !after.isNumber { return true }
            searchRange = found.upperBound..<text.endIndex
        }
        return false
    }

    struct Answer {
        let status: Int
        let headers: [String: String]
        let body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(self.body.utf8)) as? [String: Any]) ?? [:] }
        var requestID: String? { self.headers["x-request-id"] }
    }

    /// One request with curl (a POST when `json`, `basic` or `bearer` is given, a GET otherwise): status, headers
    /// (names lowercased) and body.
    static func request(_ url: String, tlsCA: String? = nil, basic: String? = nil, bearer: String? = nil, json: [String: Any]? = nil,
                        requestID: String? = nil, client: (certificate: String, key: String)? = nil) async throws -> Answer {
        // --max-time only keeps a broken build from hanging the run.
        var arguments = ["-sS", "-i", "--max-time", "120"]
        if let tlsCA { arguments += ["--cacert", tlsCA] }
        if let client { arguments += ["--cert", client.certificate, "--key", client.key] }
        if let basic { arguments += ["-u", basic] }
        if let bearer { arguments += ["-H", "Authorization: Bearer \(bearer)"] }
        if let requestID { arguments += ["-H", "X-Request-Id: \(requestID)"] }
        if json != nil || basic != nil || bearer != nil {
            let body = try JSONSerialization.data(withJSONObject: json ?? [:])
            arguments += ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", String(decoding: body, as: UTF8.self)]
        }
        let result = try await runOffPool("curl", arguments + [url])
        try #require(result.status == 0, "curl \(url): \(result.output)")
        let parts = result.output.components(separatedBy: "\r\n\r\n")
        let head = parts[0].components(separatedBy: "\r\n")
        let status = Int(head[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Answer(status: status, headers: headers, body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }
}
