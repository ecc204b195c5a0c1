import AsyncHTTPClient
import Foundation
import NIOCore
import CSCClient
import CSCProtocol
import SigilloDomain
import SigilloPKI
import SigilloSQLite
import SigilloTestSupport
import Testing
import X509

/// An answer of the public listener with its raw body.
struct RawResponse {
    let status: Int
    let contentType: String?
    let body: [UInt8]
}

extension LiveServer {
    /// `GET path` (or `POST` with `body`) on the public listener, body kept as bytes.
    func raw(_ path: String, post body: [UInt8]? = nil, contentType: String? = nil) async throws -> RawResponse {
        var request = HTTPClientRequest(url: self.baseURL + path)
        if let body {
            request.method = .POST
            request.body = .bytes(ByteBuffer(bytes: body))
            if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        }
        let response = try await self.client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 1 << 24)
        return RawResponse(status: Int(response.status.code), contentType: response.headers.first(name: "Content-Type"), body: Array(buffer: bytes))
    }

    /// Writes `credential`'s certificate as PEM in the server folder and returns the path.
    func writeCertificate(_ credential: Credential, name: String) throws -> String {
        let path = self.directory.appendingPathComponent("\(name).pem").path
        try CertificateAuthority.pem(of: try Certificate(derEncoded: credential.certificateDER)).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

@Suite("CRL: served DER, signed by the token, following suspend/reinstate/revoke")
struct CRLTests {
    /// Fetches `/crl/ca.crl`, checks its signature with openssl, writes DER and PEM copies; returns the PEM path,
    /// the CRL number and `openssl crl -text`.
    static func fetchCRL(_ server: LiveServer, _ name: String) async throws -> (pem: String, number: Int, text: String) {
        let response = try await server.raw("/crl/ca.crl")
        #expect(response.status == 200)
        #expect(response.contentType == "application/pkix-crl")
        let der = server.directory.appendingPathComponent("\(name).crl").path
        try Data(response.body).write(to: URL(fileURLWithPath: der))
        let number = try await Self.verifiedNumber(server, der: der)
        let pem = server.directory.appendingPathComponent("\(name)-crl.pem").path
        let convert = try await runOffPool("openssl", ["crl", "-inform", "DER", "-in", der, "-out", pem])
        #expect(convert.status == 0, "\(convert.output)")
        let text = try await runOffPool("openssl", ["crl", "-inform", "DER", "-in", der, "-noout", "-text"]).output
        return (pem, number, text)
    }

    /// Checks the signature of the DER CRL at `der` against the CA certificate with openssl, and returns its CRL number.
    static func verifiedNumber(_ server: LiveServer, der: String) async throws -> Int {
        let verify = try await runOffPool("openssl", ["crl", "-inform", "DER", "-in", der, "-CAfile", server.caFile, "-noout", "-verify"])
        #expect(verify.status == 0 && verify.output.contains("verify OK"), "\(verify.output)")
        let numberLine = try await runOffPool("openssl", ["crl", "-inform", "DER", "-in", der, "-noout", "-crlnumber"]).output
        // crlNumber=0x1C
        let hex = try #require(numberLine.split(separator: "=").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        return try #require(Int(hex.hasPrefix("0x") ? String(hex.dropFirst(2)) : hex, radix: 16), "\(numberLine)")
    }

    static func verify(_ server: LiveServer, certificate: String, crl: String) async throws -> (status: Int32, output: String) {
        try await runOffPool("openssl", ["verify", "-crl_check", "-CAfile", server.caFile, "-CRLfile", crl, certificate])
    }

    @Test("ca.cer and an empty CRL; revoke and suspend show up (reason, certificateHold); reinstate removes; CRL number grows")
    func lifecycle() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            let server = admin.server
            let ca = try await server.raw("/ca.cer")
            #expect(ca.status == 200 && ca.contentType == "application/pkix-cert")
            #expect(ca.body == server.services.ca.certificateDER)

            let good = try await server.activate(name: "Mario")
            let bad = try await server.activate(name: "Luigi")
            let held = try await server.activate(name: "Anna", keyAlgorithm: .rsa2048)
            let goodPEM = try server.writeCertificate(good.credential, name: "good")
            let badPEM = try server.writeCertificate(bad.credential, name: "bad")
            let heldPEM = try server.writeCertificate(held.credential, name: "held")

            let first = try await Self.fetchCRL(server, "first")
            #expect(first.text.contains("No Revoked Certificates"), "\(first.text)")
            #expect(first.text.contains("Next Update"))
            #expect(try await Self.verify(server, certificate: badPEM, crl: first.pem).status == 0)
            // Nothing changed: the cached CRL is served again.
            let again = try await Self.fetchCRL(server, "again")
            #expect(again.number == first.number)

            let revoked = try await admin.request(.POST, "credentials/\(bad.credential.id)/revoke", ["reason": "keyCompromise"])
            #expect(revoked.status == 200, "\(revoked.json)")
            let suspended = try await admin.request(.POST, "credentials/\(held.credential.id)/suspend")
            #expect(suspended.status == 200, "\(suspended.json)")

            let second = try await Self.fetchCRL(server, "second")
            #expect(second.number > first.number)
            #expect(second.text.contains(bad.credential.serialNumber) && second.text.contains("Key Compromise"), "\(second.text)")
            #expect(second.text.contains(held.credential.serialNumber) && second.text.contains("Certificate Hold"), "\(second.text)")
            #expect(second.text.contains("Hold Instruction Reject"), "\(second.text)")
            #expect(!second.text.contains(good.credential.serialNumber))
            let rejected = try await Self.verify(server, certificate: badPEM, crl: second.pem)
            #expect(rejected.status != 0 && rejected.output.contains("certificate revoked"), "\(rejected.output)")
            let onHold = try await Self.verify(server, certificate: heldPEM, crl: second.pem)
            #expect(onHold.status != 0 && onHold.output.contains("certificate revoked"), "\(onHold.output)")
            let accepted = try await Self.verify(server, certificate: goodPEM, crl: second.pem)
            #expect(accepted.status == 0 && accepted.output.contains("OK"), "\(accepted.output)")

            let reinstated = try await admin.request(.POST, "credentials/\(held.credential.id)/reinstate")
            #expect(reinstated.status == 200, "\(reinstated.json)")
            let third = try await Self.fetchCRL(server, "third")
            #expect(third.number > second.number)
            #expect(!third.text.contains(held.credential.serialNumber) && !third.text.contains("Certificate Hold"), "\(third.text)")
            #expect(third.text.contains(bad.credential.serialNumber))
            #expect(try await Self.verify(server, certificate: heldPEM, crl: third.pem).status == 0)
            #expect(try await Self.verify(server, certificate: badPEM, crl: third.pem).status != 0)

            // The admin route serves the same current CRL.
            let fromAdmin = try await admin.request(.GET, "crl")
            #expect(fromAdmin.status == 200)
            let adminPath = server.directory.appendingPathComponent("admin.crl").path
            try fromAdmin.data.write(to: URL(fileURLWithPath: adminPath))
            #expect(try await Self.verifiedNumber(server, der: adminPath) == third.number)
        }
    }

    @Test("a status changed behind the publisher's back (another node) still rebuilds the CRL")
    func changeSeenWithoutMarkDirty() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Paolo")
            let first = try await Self.fetchCRL(server, "n1")
            _ = try await server.services.store.revokeCredential(id: account.credential.id, reason: .superseded, at: Date())
            let second = try await Self.fetchCRL(server, "n2")
            #expect(second.number > first.number)
            #expect(second.text.contains(account.credential.serialNumber) && second.text.contains("Superseded"), "\(second.text)")
        }
    }
}
