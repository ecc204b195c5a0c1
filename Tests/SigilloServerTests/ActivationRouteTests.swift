import Foundation
import PKCS11
import CSCClient
import SigilloDomain
import SigilloCMS
import SigilloSQLite
import SigilloTestSupport
import Testing

@Suite("Activation over the public listener")
struct ActivationRouteTests {
    @Test("invitation → sigillo activate begin/complete → sigillo sign, the README's path")
    func activateThenSign() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let service = server.services.domain
            let holder = try await service.enrollment.createHolder(givenName: "Giulia", surname: "Bianchi", fiscalCode: TestData.fiscalCode(), email: "giulia@example.it", mobile: "+393471234567", actor: "operator:test", recognized: true)
            let invitation = try await service.enrollment.invite(holderID: holder.id, actor: "operator:test")
            let connection = ["--server", server.baseURL, "--ca", server.tlsCAFile]
            let begin = try await runOffPool(SignCLITests.sigillo, ["activate", "begin", "--code", invitation.code, "--json"] + connection)
            #expect(begin.status == 0, "\(begin.output)")
            let answer = try JSONSerialization.jsonObject(with: Data(begin.output.utf8)) as? [String: String]
            var totp = TOTPDevice(secret: try #require(answer?["secret"].flatMap(Base32.decode)))
            #expect(answer?["otpauthURI"]?.hasPrefix("otpauth://totp/Sigillo:giulia%40example.it?secret=") == true)
            let complete = try await runOffPool(SignCLITests.sigillo, ["activate", "complete", "--code", invitation.code, "--username", "giulia", "--password-stdin"] + connection,
                                                input: Data("correct horse battery\n\(await totp.next())\n".utf8))
            #expect(complete.status == 0, "\(complete.output)")
            #expect(complete.output.contains("Activated. Credential c-"))
            // The same invitation cannot be used again.
            let again = try await server.post("/activation/v1/begin", ["code": invitation.code, "device": "totp"])
            #expect(again.status == 410 && again.error == "invitation_used")

            let folder = try TestHSM.makeTemporaryDirectory()
            let file = folder.appendingPathComponent("first.pdf").path
            try Data("my first signed document".utf8).write(to: URL(fileURLWithPath: file))
            let sign = try await runOffPool(SignCLITests.sigillo, ["sign", file, "--username", "giulia", "--password-stdin"] + connection,
                                            input: Data("correct horse battery\n\(await totp.next())\n".utf8))
            #expect(sign.status == 0, "\(sign.output)")
            let verify = try await runOffPool("openssl", ["cms", "-verify", "-binary", "-content", file, "-in", file + ".p7s", "-inform", "DER", "-CAfile", server.caFile, "-purpose", "any", "-out", "/dev/null"])
            #expect(verify.status == 0, "\(verify.output)")
        }
    }

    @Test("refusals: unknown code, malformed body, weak password, wrong OTP, unknown device")
    func refusals() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let service = server.services.domain
            let holder = try await service.enrollment.createHolder(givenName: "Ivo", surname: "Neri", fiscalCode: TestData.fiscalCode(), email: "ivo@example.it", mobile: "+393471234568", actor: "op", recognized: true)
            let invitation = try await service.enrollment.invite(holderID: holder.id, actor: "op")
            let unknown = try await server.post("/activation/v1/begin", ["code": "AAAAAAAA", "device": "totp"])
            #expect(unknown.status == 404 && unknown.error == "not_found")
            let huge = try await server.post("/activation/v1/begin", ["code": String(repeating: "A", count: 100_000), "device": "totp"])
            #expect(huge.status == 413 && huge.error == "payload_too_large")
            let malformed = try await server.post("/activation/v1/begin", raw: "{")
            #expect(malformed.status == 400 && malformed.error == "invalid_request")
            let device = try await server.post("/activation/v1/begin", ["code": invitation.code, "device": "carrier-pigeon"])
            #expect(device.status == 400 && device.error == "invalid_request")
            let begun = try await server.post("/activation/v1/begin", ["code": invitation.code, "device": "totp"])
            let secret = try #require((begun.json["secret"] as? String).flatMap(Base32.decode))
            let weak = try await server.post("/activation/v1/complete", ["code": invitation.code, "username": "ivo", "password": "short", "otp": TOTP.code(secret: secret, time: Date())])
            #expect(weak.status == 400 && weak.error == "weak_password")
            let wrong = try await server.post("/activation/v1/complete", ["code": invitation.code, "username": "ivo", "password": "correct horse battery", "otp": "000000"])
            #expect(wrong.status == 400 && wrong.error == "invalid_otp")
            let badKey = try await server.post("/activation/v1/complete", ["code": invitation.code, "username": "ivo", "password": "correct horse battery", "otp": TOTP.code(secret: secret, time: Date()), "keyAlgorithm": "dsa-1024"])
            #expect(badKey.status == 400 && badKey.error == "invalid_request")
            // Nothing was half-created: the invitation still works.
            let done = try await server.post("/activation/v1/complete", ["code": invitation.code, "username": "ivo", "password": "correct horse battery", "otp": TOTP.code(secret: secret, time: Date()), "keyAlgorithm": "rsa-2048"])
            #expect(done.status == 201, "\(done.json)")
        }
    }
}
