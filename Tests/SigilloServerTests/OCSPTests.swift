import Crypto
import Foundation
import CSCClient
import SigilloDomain
import SigilloPKI
import SigilloSQLite
import SigilloTestSupport
import Testing
import SwiftASN1
import X509

@Suite("OCSP responder: openssl ocsp over HTTPS, good / revoked / on hold / unknown, pre-signed and cached, bounded requests")
struct OCSPTests {
    /// Builds a request with `openssl ocsp -reqout` (with a nonce unless `nonce` is false), POSTs it (or GETs it),
    /// and reads the answer with `openssl ocsp -respin ... -CAfile ca.pem -resp_text`.
    static func check(_ server: LiveServer, certificate: String, issuer: String? = nil, name: String, nonce: Bool = true, get: Bool = false, certIDDigest: String? = nil) async throws -> String {
        let issuer = issuer ?? server.caFile
        let request = server.directory.appendingPathComponent("\(name)-req.der").path
        let response = server.directory.appendingPathComponent("\(name)-resp.der").path
        let made = try await runOffPool("openssl", ["ocsp", "-issuer", issuer] + (certIDDigest.map { ["-\($0)"] } ?? []) + ["-cert", certificate, "-reqout", request] + (nonce ? [] : ["-no_nonce"]))
        try #require(made.status == 0, "\(made.output)")
        let der = Array(try Data(contentsOf: URL(fileURLWithPath: request)))
        let answer: RawResponse
        if get {
            let encoded = Data(der).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            answer = try await server.raw("/ocsp/\(encoded)")
        } else {
            answer = try await server.raw("/ocsp", post: der, contentType: "application/ocsp-request")
        }
        #expect(answer.status == 200)
        #expect(answer.contentType == "application/ocsp-response")
        try Data(answer.body).write(to: URL(fileURLWithPath: response))
        // With the request as sent (-reqin), openssl checks the signature (and warns that the nonce did not come back: the
        // answers are pre-signed, see OCSPResponder); with -cert
        // (and -no_nonce, since -cert makes a new request) it prints the "<file>: good|revoked|unknown" summary.
        let echoed = try await runOffPool("openssl", ["ocsp", "-reqin", request, "-respin", response, "-issuer", issuer, "-CAfile", server.caFile, "-resp_text"])
        let summary = try await runOffPool("openssl", ["ocsp", "-respin", response, "-issuer", issuer] + (certIDDigest.map { ["-\($0)"] } ?? []) + ["-cert", certificate, "-CAfile", server.caFile, "-no_nonce"])
        return echoed.output + summary.output
    }

    @Test("good, revoked with time and reason, suspended as certificateHold, unknown serial; nonce not echoed; GET too")
    func statuses() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let admin = server.services.domain.lifecycle
            let good = try await server.activate(name: "Mario")
            let revoked = try await server.activate(name: "Luigi", keyAlgorithm: .rsa2048)
            let held = try await server.activate(name: "Anna")
            _ = try await admin.revoke(credentialID: revoked.credential.id, reason: .keyCompromise, actor: "operator:test")
            _ = try await admin.suspend(credentialID: held.credential.id, actor: "operator:test")
            let goodPEM = try server.writeCertificate(good.credential, name: "good")
            let revokedPEM = try server.writeCertificate(revoked.credential, name: "revoked")
            let heldPEM = try server.writeCertificate(held.credential, name: "held")

            let goodText = try await Self.check(server, certificate: goodPEM, name: "good")
            #expect(goodText.contains("Response verify OK"), "\(goodText)")
            #expect(goodText.contains("\(goodPEM): good"), "\(goodText)")
            // A cached answer cannot carry each request's nonce: openssl says so and still verifies it.
            #expect(!goodText.contains("OCSP Nonce"), "\(goodText)")
            #expect(goodText.contains("WARNING: no nonce in response") && !goodText.contains("Nonce Verify error"), "\(goodText)")

            // CertIDs hashed with SHA-256 instead of SHA-1.
            let sha256Text = try await Self.check(server, certificate: goodPEM, name: "good256", certIDDigest: "sha256")
            #expect(sha256Text.contains("Hash Algorithm: sha256") && sha256Text.contains("Response verify OK"), "\(sha256Text)")
            #expect(sha256Text.contains("\(goodPEM): good"), "\(sha256Text)")

            let revokedText = try await Self.check(server, certificate: revokedPEM, name: "revoked")
            #expect(revokedText.contains("Response verify OK"), "\(revokedText)")
            #expect(revokedText.contains("\(revokedPEM): revoked"), "\(revokedText)")
            #expect(revokedText.contains("Reason: keyCompromise"), "\(revokedText)")
            #expect(revokedText.contains("Revocation Time"), "\(revokedText)")

            let heldText = try await Self.check(server, certificate: heldPEM, name: "held", nonce: false)
            #expect(heldText.contains("Response verify OK"), "\(heldText)")
            #expect(heldText.contains("\(heldPEM): revoked") && heldText.contains("Reason: certificateHold"), "\(heldText)")

            _ = try await admin.reinstate(credentialID: held.credential.id, actor: "operator:test")
            let reinstated = try await Self.check(server, certificate: heldPEM, name: "reinstated", get: true)
            #expect(reinstated.contains("Response verify OK") && reinstated.contains("\(heldPEM): good"), "\(reinstated)")

            // Signed by our CA but never issued through the service (not in the store): unknown.
            let stranger = try await server.services.ca.issueHolderCertificate(
                publicKeySPKI: P256.Signing.PrivateKey().publicKey.derRepresentation.map { $0 },
                holder: HolderIdentity(givenName: "Ignoto", surname: "Bianchi", fiscalCode: TestData.fiscalCode()), notBefore: Date(),
                pkiBaseURL: server.baseURL)
            let strangerPEM = server.directory.appendingPathComponent("stranger.pem").path
            try CertificateAuthority.pem(of: stranger).write(toFile: strangerPEM, atomically: true, encoding: .utf8)
            let unknown = try await Self.check(server, certificate: strangerPEM, name: "unknown")
            #expect(unknown.contains("Response verify OK") && unknown.contains("\(strangerPEM): unknown"), "\(unknown)")
        }
    }

    @Test("openssl ocsp -url against the HTTPS listener")
    func opensslURL() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Mario")
            let pem = try server.writeCertificate(account.credential, name: "holder")
            let result = try await runOffPool("openssl", ["ocsp", "-issuer", server.caFile, "-cert", pem, "-url", "\(server.baseURL)/ocsp",
                                                          "-CAfile", server.caFile, "-resp_text"])
            #expect(result.output.contains("Response verify OK") && result.output.contains("\(pem): good"), "\(result.output)")
        }
    }

    @Test("malformed requests get an OCSP malformedRequest answer, never a 500")
    func malformed() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let malformed: [UInt8] = [0x30, 0x03, 0x0A, 0x01, 0x01]
            for body: [UInt8] in [[], [0x30, 0x00], Array("hello".utf8), [0x30, 0x03, 0x30, 0x01, 0x00]] {
                let answer = try await server.raw("/ocsp", post: body, contentType: "application/ocsp-request")
                #expect(answer.status == 200 && answer.body == malformed, "\(body) → \(answer.status) \(answer.body)")
            }
            for path in ["/ocsp/!!!", "/ocsp/aGVsbG8=", "/ocsp/MAA%3D"] {
                let answer = try await server.raw(path)
                #expect(answer.status == 200 && answer.body == malformed, "\(path) → \(answer.status) \(answer.body)")
            }
        }
    }
}

/// OCSP requests written byte by byte, for what `openssl ocsp` will not send (hundreds of CertIDs, odd nonces).
enum OCSPRequestDER {
    static let nonceOID: [UInt8] = [0x06, 0x09, 0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02]

    /// A DER TLV.
    static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        var length: [UInt8]
        if content.count < 0x80 {
            length = [UInt8(content.count)]
        } else {
            var bytes: [UInt8] = []
            var count = content.count
            while count > 0 { bytes.insert(UInt8(count & 0xFF), at: 0); count >>= 8 }
            length = [0x80 | UInt8(bytes.count)] + bytes
        }
        return [tag] + length + content
    }

    /// The encoded fields of the CertID in an `openssl ocsp -reqout` request: hash algorithm, issuer name and key
    /// hashes, serial number.
    static func certIDFields(of request: [UInt8]) throws -> [[UInt8]] {
        func children(_ node: ASN1Node) throws -> [ASN1Node] {
            guard case .constructed(let nodes) = node.content else { throw ASN1Error.invalidASN1Object(reason: "not constructed") }
            return Array(nodes)
        }
        let tbs = try #require(try children(try DER.parse(request)).first)
        let list = try #require(try children(tbs).first { $0.identifier == .sequence })
        let single = try #require(try children(list).first)
        let certID = try #require(try children(single).first)
        return try children(certID).map { Array($0.encodedBytes) }
    }

    /// A CertID from `fields`, with another serial number (positive, big-endian) or another algorithm encoding.
    static func certID(_ fields: [[UInt8]], serial: [UInt8]? = nil, algorithm: [UInt8]? = nil) -> [UInt8] {
        let serialTLV = serial.map { self.tlv(0x02, ($0.first ?? 0) >= 0x80 ? [0] + $0 : $0) } ?? fields[3]
        return self.tlv(0x30, (algorithm ?? fields[0]) + fields[1] + fields[2] + serialTLV)
    }

    /// An `OCSPRequest` for `certIDs` with, if given, a nonce extension whose value is `nonce` (wrapped in an OCTET
    /// STRING as RFC 8954 writes it, unless `wrapped` is false).
    static func request(_ certIDs: [[UInt8]], nonce: [UInt8]? = nil, wrapped: Bool = true) -> [UInt8] {
        var tbs = self.tlv(0x30, certIDs.flatMap { self.tlv(0x30, $0) })
        if let nonce {
            let value = wrapped ? self.tlv(0x04, nonce) : nonce
            tbs += self.tlv(0xA2, self.tlv(0x30, self.tlv(0x30, self.nonceOID + self.tlv(0x04, value))))
        }
        return self.tlv(0x30, self.tlv(0x30, tbs))
    }

    static func random(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255) } }
    /// A random positive serial number as a minimal DER INTEGER's content (first byte 0x01–0x7F): a random first byte
    /// would make one request in a few hundred non-minimal (0x00 then < 0x80), so malformed rather than unknown.
    static func serial(_ count: Int = 16) -> [UInt8] { [UInt8.random(in: 0x01...0x7F)] + self.random(count - 1) }
}

extension OCSPTests {
    static let malformed: [UInt8] = [0x30, 0x03, 0x0A, 0x01, 0x01]

    /// The CertID fields of `pem`'s certificate, from a request `openssl ocsp` makes.
    static func certIDFields(_ server: LiveServer, pem: String, name: String) async throws -> [[UInt8]] {
        let path = server.directory.appendingPathComponent("\(name)-fields.der").path
        let made = try await runOffPool("openssl", ["ocsp", "-issuer", server.caFile, "-cert", pem, "-reqout", path, "-no_nonce"])
        try #require(made.status == 0, "\(made.output)")
        return try OCSPRequestDER.certIDFields(of: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    /// What `openssl ocsp` reads in `answer` for `pem`: verification and status.
    static func opensslReads(_ server: LiveServer, _ answer: [UInt8], pem: String, name: String) async throws -> String {
        let path = server.directory.appendingPathComponent("\(name)-answer.der").path
        try Data(answer).write(to: URL(fileURLWithPath: path))
        return try await runOffPool("openssl", ["ocsp", "-respin", path, "-issuer", server.caFile, "-cert", pem, "-CAfile", server.caFile, "-no_nonce", "-resp_text"]).output
    }

    @Test("30 concurrent requests for one certificate, each with its own nonce, cost one CA signature; a revocation shows at once; half the validity later, one more")
    func cachedAnswers() async throws {
        let fixture = try TestToken()
        let clock = TestClock()
        try await LiveServer.with(fixture, clock: clock.serviceClock) { server in
            let account = try await server.activate(name: "Mario")
            let pem = try server.writeCertificate(account.credential, name: "cached")
            let fields = try await Self.certIDFields(server, pem: pem, name: "cached")
            let certID = OCSPRequestDER.certID(fields)
            let client = ConcurrentClient(server)
            let responder = server.services.ocsp
            let start = responder.signatureCount

            let answers = try await allAtOnce(30) { _ in
                try await client.send("/ocsp", der: OCSPRequestDER.request([certID], nonce: OCSPRequestDER.random(Int.random(in: 16...32))))
            }
            #expect(answers.allSatisfy { $0.status == 200 && $0.contentType == "application/ocsp-response" })
            #expect(Set(answers.map(\.bytes)).count == 1)
            #expect(responder.signatureCount == start + 1)
            let good = try await Self.opensslReads(server, answers[0].bytes, pem: pem, name: "good")
            #expect(good.contains("Response verify OK") && good.contains("\(pem): good") && !good.contains("OCSP Nonce"), "\(good)")
            // GET, and a request without nonce: the same answer.
            let encoded = Data(OCSPRequestDER.request([certID])).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            #expect(try await client.send("/ocsp/\(encoded)", method: .GET).bytes == answers[0].bytes)
            #expect(responder.signatureCount == start + 1)

            // Revoked: the store is read for every request, so the next answer says so.
            _ = try await server.services.domain.lifecycle.revoke(credentialID: account.credential.id, reason: .keyCompromise, actor: "operator:test")
            let afterRevocation = try await allAtOnce(30) { _ in try await client.send("/ocsp", der: OCSPRequestDER.request([certID], nonce: OCSPRequestDER.random(16))) }
            #expect(Set(afterRevocation.map(\.bytes)).count == 1)
            #expect(responder.signatureCount == start + 2)
            let revoked = try await Self.opensslReads(server, afterRevocation[0].bytes, pem: pem, name: "revoked")
            #expect(revoked.contains("Response verify OK") && revoked.contains("\(pem): revoked") && revoked.contains("Reason: keyCompromise"), "\(revoked)")

            // Still fresh a little before half the validity; signed again at half of it (nextUpdate never comes close).
            clock.advance(responder.validity / 2 - 1)
            #expect(try await client.send("/ocsp", der: OCSPRequestDER.request([certID])).bytes == afterRevocation[0].bytes)
            #expect(responder.signatureCount == start + 2)
            clock.advance(1)
            let renewed = try await client.send("/ocsp", der: OCSPRequestDER.request([certID]))
            #expect(renewed.bytes != afterRevocation[0].bytes && responder.signatureCount == start + 3)
            try await client.shutdown()
        }
    }

    @Test("bounded requests: 500 or 2 CertIDs, nonces of 0 or 33 octets, odd algorithm parameters are malformedRequest; another issuer is unauthorized; none costs a signature")
    func boundedRequests() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Mario")
            let pem = try server.writeCertificate(account.credential, name: "bounded")
            let fields = try await Self.certIDFields(server, pem: pem, name: "bounded")
            let certID = OCSPRequestDER.certID(fields)
            let client = ConcurrentClient(server)
            let responder = server.services.ocsp
            let start = responder.signatureCount

            let many = OCSPRequestDER.request(Array(repeating: certID, count: 500), nonce: OCSPRequestDER.random(32))
            #expect(try await client.send("/ocsp", der: many).bytes == Self.malformed)
            let encoded = Data(many).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            #expect(try await client.send("/ocsp/\(encoded)", method: .GET).bytes == Self.malformed)
            #expect(try await client.send("/ocsp", der: OCSPRequestDER.request([certID, certID])).bytes == Self.malformed)
            for length in [0, 33, 20_000] {
                let answer = try await client.send("/ocsp", der: OCSPRequestDER.request([certID], nonce: OCSPRequestDER.random(length)))
                #expect(answer.bytes == Self.malformed, "nonce of \(length)")
            }
            #expect(try await client.send("/ocsp", der: OCSPRequestDER.request([certID], nonce: OCSPRequestDER.random(33), wrapped: false)).bytes == Self.malformed)
            // SHA-1 with parameters other than NULL: the CertID could vary at will.
            let oddAlgorithm = OCSPRequestDER.tlv(0x30, [0x06, 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1A] + OCSPRequestDER.tlv(0x04, [1, 2, 3]))
            #expect(try await client.send("/ocsp", der: OCSPRequestDER.request([OCSPRequestDER.certID(fields, algorithm: oddAlgorithm)])).bytes == Self.malformed)
            // Another issuer's name hash: not ours to answer, and no signature spent on it.
            var otherIssuer = fields
            otherIssuer[1] = OCSPRequestDER.tlv(0x04, OCSPRequestDER.random(20))
            #expect(try await client.send("/ocsp", der: OCSPRequestDER.request([OCSPRequestDER.certID(otherIssuer)])).bytes == [0x30, 0x03, 0x0A, 0x01, 0x06])
            #expect(responder.signatureCount == start)

            // The largest nonce, wrapped as RFC 8954 writes it or bare as older clients send it: answered.
            for wrapped in [true, false] {
                let answer = try await client.send("/ocsp", der: OCSPRequestDER.request([certID], nonce: OCSPRequestDER.random(32), wrapped: wrapped))
                let text = try await Self.opensslReads(server, answer.bytes, pem: pem, name: "nonce32-\(wrapped)")
                #expect(text.contains("Response verify OK") && text.contains("\(pem): good"), "\(text)")
            }
            #expect(responder.signatureCount == start + 1)
            try await client.shutdown()
        }
    }

    @Test("unknown serial numbers spend a bounded signing budget, then get tryLater unsigned; known answers stay served")
    func signingBudget() async throws {
        let fixture = try TestToken()
        let clock = TestClock()
        try await LiveServer.with(fixture, clock: clock.serviceClock) { server in
            let account = try await server.activate(name: "Mario")
            let pem = try server.writeCertificate(account.credential, name: "budget")
            let fields = try await Self.certIDFields(server, pem: pem, name: "budget")
            let responder = try OCSPResponder(ca: server.services.ca, store: server.services.store, clock: clock.serviceClock, signingBurst: 3, signingRate: 1)
            let known = await responder.respond(to: OCSPRequestDER.request([OCSPRequestDER.certID(fields)]))
            let tryLater: [UInt8] = [0x30, 0x03, 0x0A, 0x01, 0x03]
            var answers: [[UInt8]] = []
            for _ in 0..<10 {
                answers.append(await responder.respond(to: OCSPRequestDER.request([OCSPRequestDER.certID(fields, serial: OCSPRequestDER.serial())])))
            }
            #expect(answers.filter { $0 == tryLater }.count == 8, "\(answers.map(\.count))")
            #expect(responder.signatureCount == 3)
            #expect(await responder.respond(to: OCSPRequestDER.request([OCSPRequestDER.certID(fields)])) == known)
            clock.advance(1)
            #expect(await responder.respond(to: OCSPRequestDER.request([OCSPRequestDER.certID(fields, serial: OCSPRequestDER.serial())])) != tryLater)
            #expect(responder.signatureCount == 4)
            let signed = try #require(answers.first(where: { $0 != tryLater }))
            let unknownText = try await Self.opensslReads(server, signed, pem: pem, name: "unknown-serial")
            #expect(unknownText.contains("Response verify OK"), "\(unknownText) \(signed.prefix(8))")
        }
    }
}
