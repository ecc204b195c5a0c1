import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import PKCS11
import SigilloDomain
import SigilloPKI
import SigilloTestSupport
import Testing
import X509

/// An answer of the publication listener, headers included.
struct PublicationResponse {
    let status: Int
    let headers: [String: String]
    let body: [UInt8]
}

extension LiveServer {
    /// `GET path` (or `POST body`) on the plain-HTTP publication listener.
    func publication(_ path: String, method: HTTPMethod = .GET, body: [UInt8]? = nil, contentType: String? = nil,
                     headers: [String: String] = [:]) async throws -> PublicationResponse {
        var request = HTTPClientRequest(url: self.pkiBaseURL + path)
        request.method = body == nil ? method : .POST
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await self.client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 1 << 24)
        var fields: [String: String] = [:]
        for header in response.headers { fields[header.name.lowercased()] = header.value }
        return PublicationResponse(status: Int(response.status.code), headers: fields, body: Array(buffer: bytes))
    }
}

@Suite("Relying parties: CA certificate, CRL, OCSP and a TSA over plain HTTP; PAdES B-T/B-LT/B-LTA validated by pyHanko")
struct RelyingPartyTests {
    @Test("the publication listener: http:// URLs in certificates; openssl crl, ocsp -url and ts against it; cacheable GET OCSP; 404 elsewhere")
    func publicationListener() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture, pki: true) { server in
            let base = try #require(server.pkiPort.map { "http://127.0.0.1:\($0)" })
            let account = try await server.activate(name: "Lucia")
            let holder = try server.writeCertificate(account.credential, name: "lucia")
            let text = try await runOffPool("openssl", ["x509", "-in", holder, "-noout", "-text"])
            #expect(text.output.contains("URI:\(base)/crl/ca.crl"), "\(text.output)")
            #expect(text.output.contains("OCSP - URI:\(base)/ocsp") && text.output.contains("CA Issuers - URI:\(base)/ca.cer"), "\(text.output)")
            #expect(!text.output.contains("https://"), "\(text.output)")

            let caCertificate = try await server.publication("/ca.cer")
            #expect(caCertificate.status == 200 && caCertificate.body == server.services.ca.certificateDER)
            #expect(caCertificate.headers["content-type"] == "application/pkix-cert")
            let crl = try await server.publication("/crl/ca.crl")
            #expect(crl.status == 200 && crl.headers["content-type"] == "application/pkix-crl")
            let crlFile = server.directory.appendingPathComponent("published.crl")
            try Data(crl.body).write(to: crlFile)
            let crlCheck = try await runOffPool("openssl", ["crl", "-inform", "DER", "-in", crlFile.path, "-CAfile", server.caFile, "-noout"])
            #expect(crlCheck.status == 0 && crlCheck.output.contains("verify OK"), "\(crlCheck.output)")

            // openssl fetches the answer itself, as any relying party would.
            func ocsp(_ certificate: String) async throws -> String {
                let result = try await runOffPool("openssl", ["ocsp", "-issuer", server.caFile, "-cert", certificate, "-url", "\(base)/ocsp", "-CAfile", server.caFile, "-no_nonce"])
                #expect(result.status == 0, "\(result.output)")
                return result.output
            }
            let good = try await ocsp(holder)
            #expect(good.contains("Response verify OK") && good.contains("\(holder): good"), "\(good)")

            // GET answers are cacheable (RFC 5019 §6.2): the same bytes and ETag until signed again, 304 for a matching
            // If-None-Match, and no new signature of the CA key per request.
            let request = server.directory.appendingPathComponent("lucia-req.der").path
            let made = try await runOffPool("openssl", ["ocsp", "-issuer", server.caFile, "-cert", holder, "-no_nonce", "-reqout", request])
            try #require(made.status == 0, "\(made.output)")
            let encoded = try Data(contentsOf: URL(fileURLWithPath: request)).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let first = try await server.publication("/ocsp/\(encoded)")
            let signatures = server.services.ocsp.signatureCount
            let second = try await server.publication("/ocsp/\(encoded)")
            #expect(first.status == 200 && first.body == second.body && first.headers["etag"] != nil && first.headers["etag"] == second.headers["etag"])
            #expect(server.services.ocsp.signatureCount == signatures)
            let cacheControl = try #require(first.headers["cache-control"])
            let maxAge = try #require(cacheControl.split(separator: ",").first { $0.contains("max-age=") }.flatMap { Int($0.split(separator: "=")[1]) })
            #expect(maxAge > 0 && maxAge <= 300 && cacheControl.contains("public"), "\(cacheControl)")
            #expect(first.headers["last-modified"] != nil && first.headers["expires"] != nil)
            let notModified = try await server.publication("/ocsp/\(encoded)", headers: ["If-None-Match": first.headers["etag"]!])
            #expect(notModified.status == 304 && notModified.body.isEmpty)

            // A status change is answered at once (the cached answer states the old status, so it is signed again).
            _ = try await server.services.domain.lifecycle.revokeCredential(account.credential.id, reason: .keyCompromise, actor: "operator:test")
            let revoked = try await ocsp(holder)
            #expect(revoked.contains("\(holder): revoked") && revoked.contains("Reason: keyCompromise"), "\(revoked)")
            let afterRevocation = try await server.publication("/ocsp/\(encoded)")
            #expect(afterRevocation.body != first.body && afterRevocation.headers["etag"] != first.headers["etag"])

            // RFC 3161 over HTTP with openssl's own queries.
            let document = server.directory.appendingPathComponent("document.txt")
            try Data("a document to time-stamp".utf8).write(to: document)
            let query = server.directory.appendingPathComponent("query.tsq").path
            let queried = try await runOffPool("openssl", ["ts", "-query", "-data", document.path, "-sha256", "-cert", "-out", query])
            try #require(queried.status == 0, "\(queried.output)")
            let reply = try await server.publication("/tsa", body: Array(try Data(contentsOf: URL(fileURLWithPath: query))), contentType: "application/timestamp-query")
            #expect(reply.status == 200 && reply.headers["content-type"] == "application/timestamp-reply")
            let replyFile = server.directory.appendingPathComponent("reply.tsr")
            try Data(reply.body).write(to: replyFile)
            let verified = try await runOffPool("openssl", ["ts", "-verify", "-data", document.path, "-in", replyFile.path, "-CAfile", server.caFile])
            #expect(verified.status == 0 && verified.output.contains("Verification: OK"), "\(verified.output)")
            let malformed = try await server.publication("/tsa", body: [0x30, 0x03, 0x02, 0x01], contentType: "application/timestamp-query")
            #expect(malformed.status == 200 && malformed.headers["content-type"] == "application/timestamp-reply")
            let malformedFile = server.directory.appendingPathComponent("malformed.tsr")
            try Data(malformed.body).write(to: malformedFile)
            let rejected = try await runOffPool("openssl", ["ts", "-reply", "-in", malformedFile.path, "-text"])
            #expect(rejected.output.contains("Status: Rejected") && rejected.output.contains("the data submitted has the wrong format"), "\(rejected.output)")

            // Nothing else is served here: not the CSC API, not health, not the holder pages.
            for (method, path) in [(HTTPMethod.GET, "/"), (.GET, "/health"), (.GET, "/activate"), (.POST, "/csc/v2/info"), (.GET, "/tsa"), (.POST, "/ca.cer"),
                                   (.GET, "/crl/other.crl"), (.GET, "/admin/v1/holders")] {
                let answer = try await server.publication(path, method: method, body: method == .POST ? Array("{}".utf8) : nil)
                #expect(answer.status == 404, "\(method) \(path): \(answer.status)")
            }
        }
    }

    @Test("CSC v2 signatures/timestamp: a token openssl verifies over the digest sent, nonce echoed; bad input refused")
    func cscTimestamp() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Nina")
            let info = try await server.post("/csc/v2/info")
            #expect((info.json["methods"] as? [String])?.contains("signatures/timestamp") == true)
            let v1 = try await server.post("/csc/v1/info")
            #expect((v1.json["methods"] as? [String])?.contains("signatures/timestamp") == false)
            let login = try await server.post("/csc/v2/auth/login", basic: (account.username, account.password))
            let token = try #require(login.json["access_token"] as? String)

            let digest = Array(SHA256.hash(data: Data("signature value".utf8)))
            let answer = try await server.post("/csc/v2/signatures/timestamp",
                                               ["hash": Data(digest).base64EncodedString(), "hashAlgo": "2.16.840.1.101.3.4.2.1", "nonce": "0a1b2c3d4e5f"], bearer: token)
            #expect(answer.status == 200, "\(answer.json)")
            let timestamp = try #require((answer.json["timestamp"] as? String).flatMap { Data(base64Encoded: $0) })
            let file = server.directory.appendingPathComponent("token.der")
            try timestamp.write(to: file)
            let hex = digest.map { String(format: "%02x", $0) }.joined()
            let verified = try await runOffPool("openssl", ["ts", "-verify", "-token_in", "-in", file.path, "-digest", hex, "-CAfile", server.caFile, "-untrusted", server.tsaFile])
            #expect(verified.status == 0 && verified.output.contains("Verification: OK"), "\(verified.output)")
            let printed = try await runOffPool("openssl", ["ts", "-reply", "-token_in", "-in", file.path, "-text"])
            #expect(printed.output.contains("Nonce: 0x0A1B2C3D4E5F") && printed.output.contains("Policy OID: 0.4.0.2023.1.1"), "\(printed.output)")

            let refusals: [([String: Any], String?)] = [
                (["hashAlgo": "2.16.840.1.101.3.4.2.1"], nil),
                (["hash": Data(digest).base64EncodedString()], nil),
                (["hash": [Data(digest).base64EncodedString(), Data(digest).base64EncodedString()], "hashAlgo": "2.16.840.1.101.3.4.2.1"], nil),
                (["hash": Data(digest.prefix(20)).base64EncodedString(), "hashAlgo": "2.16.840.1.101.3.4.2.1"], nil),
                (["hash": Data(digest).base64EncodedString(), "hashAlgo": "1.2.3.4"], nil),
                (["hash": Data(digest).base64EncodedString(), "hashAlgo": "2.16.840.1.101.3.4.2.1", "nonce": "not hex"], nil),
            ]
            for (body, _) in refusals {
                let refused = try await server.post("/csc/v2/signatures/timestamp", body, bearer: token)
                #expect(refused.status == 400 && refused.error == "invalid_request", "\(body): \(refused.status) \(refused.json)")
            }
            let anonymous = try await server.post("/csc/v2/signatures/timestamp", ["hash": Data(digest).base64EncodedString(), "hashAlgo": "2.16.840.1.101.3.4.2.1"])
            #expect(anonymous.status == 401, "\(anonymous.json)")
            let onV1 = try await server.post("/csc/v1/signatures/timestamp", ["hash": Data(digest).base64EncodedString(), "hashAlgo": "2.16.840.1.101.3.4.2.1"], bearer: token)
            #expect(onV1.status == 404, "\(onV1.json)")
        }
    }

    /// `pyhanko sign validate` as a relying party runs it: the Sigillo CA as the only trust anchor, revocation checked
    /// (no soft-fail flag), fetching what the certificates name.
    /// With `ades`, `pyhanko sign adesverify`: the ETSI EN 319 102-1 validation, which relies on the validation data
    /// embedded in the document (and fetches what is missing).
    static func validate(_ file: String, trust: String, ades: Bool = false) async throws -> (status: Int32, output: String) {
        let pyhanko = repositoryRoot.appendingPathComponent(".venv/bin/pyhanko").path
        return try await runOffPool(pyhanko, ["sign", ades ? "adesverify" : "validate", "--trust", trust, "--trust-replace", file])
    }

    @Test("pyHanko PAdES B-T, B-LT and B-LTA with Sigillo's TSA: INTACT:TRUSTED online without soft revocation, B-LT and B-LTA again offline (AdES validation), B-T not; a revoked signer shows as revoked")
    func pades() async throws {
        let python = repositoryRoot.appendingPathComponent(".venv/bin/python").path
        try #require(FileManager.default.isExecutableFile(atPath: python), "run `make venv` first (make test does)")
        try #require(FileManager.default.isExecutableFile(atPath: repositoryRoot.appendingPathComponent(".venv/bin/pyhanko").path), "pyhanko-cli: run `make venv`")
        let fixture = try TestToken()
        let output = try TestHSM.makeTemporaryDirectory()
        @Sendable func sign(_ server: LiveServer, _ account: LiveServer.Account, into folder: URL) async throws -> [String: String] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            var environment = TestHSM.environment
            environment["SIGILLO_PASSWORD"] = account.password
            environment["SIGILLO_HOTP_SECRET"] = Base32.encode(account.secret, padding: false)
            environment["SIGILLO_HOTP_COUNTER"] = String(account.counter)
            environment["PYTHONPATH"] = repositoryRoot.appendingPathComponent("Tests/Interop").path
            let result = try await runOffPool(python, [
                repositoryRoot.appendingPathComponent("Tests/Interop/pades_levels.py").path,
                "--url", server.baseURL, "--tls-ca", server.tlsCAFile, "--trust-root", server.caFile, "--pki-url", server.pkiBaseURL,
                "--username", account.username, "--credential", account.credential.id, "--out", folder.path,
            ], environment: environment)
            try #require(result.status == 0, "\(result.output)")
            var files: [String: String] = [:]
            for line in result.output.split(separator: "\n") where line.hasPrefix("SIGNED ") {
                let parts = line.split(separator: " ")
                files[String(parts[1])] = String(parts[2])
            }
            try #require(files.count == 3, "\(result.output)")
            return files
        }
        let trust = output.appendingPathComponent("ca.pem").path
        let files = try await LiveServer.with(fixture, pki: true) { server in
            try FileManager.default.copyItem(atPath: server.caFile, toPath: trust)
            let files = try await sign(server, try await server.activate(name: "Paola"), into: output.appendingPathComponent("paola"))
            for level in ["B-T", "B-LT", "B-LTA"] {
                let online = try await Self.validate(files[level]!, trust: trust)
                #expect(online.status == 0 && online.output.contains("INTACT:TRUSTED"), "\(level) online: \(online.output)")
            }
            // Another holder signs, then is revoked: the relying party finds out.
            let revokedAccount = try await server.activate(name: "Bruno")
            let revokedFiles = try await sign(server, revokedAccount, into: output.appendingPathComponent("bruno"))
            _ = try await server.services.domain.lifecycle.revokeCredential(revokedAccount.credential.id, reason: .keyCompromise, actor: "operator:test")
            let revoked = try await Self.validate(revokedFiles["B-T"]!, trust: trust)
            #expect(revoked.status != 0 && revoked.output.contains("REVOKED"), "\(revoked.output)")
            return files
        }
        // The server is gone: what B-LT and B-LTA embed is enough for an AdES validation (EN 319 102-1) at the time
        // the signature time-stamp proves; B-T, which embeds no revocation data, is not.
        for level in ["B-LT", "B-LTA"] {
            let offline = try await Self.validate(files[level]!, trust: trust, ades: true)
            #expect(offline.status == 0 && offline.output.contains("INTACT:TRUSTED,TIMESTAMP_TOKEN<INTACT:TRUSTED>"), "\(level) offline: \(offline.output)")
        }
        let bareOffline = try await Self.validate(files["B-T"]!, trust: trust, ades: true)
        #expect(bareOffline.status != 0 && bareOffline.output.contains("INTACT:UNTRUSTED"), "B-T offline: \(bareOffline.output)")
    }
}
