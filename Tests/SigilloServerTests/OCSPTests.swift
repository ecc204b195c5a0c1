import Crypto
import Foundation
import CSCClient
import SigilloDomain
import SigilloPKI
import SigilloSQLite
import SigilloTestSupport
import Testing
import X509

@Suite("OCSP responder: openssl ocsp over HTTPS, good / revoked / on hold / unknown, nonce echoed")
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
        // With the request as sent (-reqin), openssl checks the signature and that the nonce came back; with -cert
        // (and -no_nonce, since -cert makes a new request) it prints the "<file>: good|revoked|unknown" summary.
        let echoed = try await runOffPool("openssl", ["ocsp", "-reqin", request, "-respin", response, "-issuer", issuer, "-CAfile", server.caFile, "-resp_text"])
        let summary = try await runOffPool("openssl", ["ocsp", "-respin", response, "-issuer", issuer] + (certIDDigest.map { ["-\($0)"] } ?? []) + ["-cert", certificate, "-CAfile", server.caFile, "-no_nonce"])
        return echoed.output + summary.output
    }

    @Test("good, revoked with time and reason, suspended as certificateHold, unknown serial; nonce echoed; GET too")
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
            #expect(goodText.contains("OCSP Nonce"), "\(goodText)")
            #expect(!goodText.contains("Nonce Verify error") && !goodText.contains("WARNING: no nonce"), "\(goodText)")

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
                publicBaseURL: server.baseURL)
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
