import AsyncHTTPClient
import Foundation
import NIOCore
import CSCClient
import CSCProtocol
import SigilloDomain
import SigilloSQLite
import SigilloTestSupport
import Testing

/// A page: status, HTML and headers.
struct WebPage {
    let status: Int
    let html: String
    let headers: [String: String]

    /// The text of the element with `id` (first match), HTML entities left as they are.
    func element(_ id: String) -> String? {
        guard let start = self.html.range(of: "id=\"\(id)\"") else { return nil }
        guard let open = self.html[start.upperBound...].firstIndex(of: ">") else { return nil }
        let rest = self.html[self.html.index(after: open)...]
        return rest.firstIndex(of: "<").map { String(rest[..<$0]) }
    }
}

extension LiveServer {
    /// GETs a page, or POSTs a form to it.
    func page(_ path: String, form: [String: String]? = nil) async throws -> WebPage {
        var request = HTTPClientRequest(url: self.baseURL + path)
        if let form {
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            let body = form.sorted { $0.key < $1.key }
                .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await self.client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 1 << 22)
        var headers: [String: String] = [:]
        for header in response.headers { headers[header.name.lowercased()] = header.value }
        return WebPage(status: Int(response.status.code), html: String(buffer: bytes), headers: headers)
    }
}

@Suite("Holder web pages and recovery routes over TLS")
struct WebPageTests {
    @Test("activation page: invitation link → QR code and secret → username, password, OTP → user code shown once")
    func activationPage() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let service = server.services.domain
            let holder = try await service.enrollment.createHolder(givenName: "Nora", surname: "Galli", fiscalCode: TestData.fiscalCode(), email: "nora@example.it",
                                                        mobile: "+393471230001", actor: "op", recognized: true)
            let invitation = try await service.enrollment.invite(holderID: holder.id, actor: "op")
            // The invitation mail carries the link to the page.
            let mail = try #require(try await server.services.store.mails().last)
            #expect(mail.recipient == "nora@example.it" && mail.body.contains("\(server.services.domain.settings.publicBaseURL)/activate?code=\(invitation.code)"))

            let unknown = try await server.page("/activate?code=NOPE")
            #expect(unknown.status == 404 && unknown.element("error") != nil)
            let first = try await server.page("/activate?code=\(invitation.code)")
            #expect(first.status == 200 && first.html.contains("Nora Galli"))
            #expect(first.headers["content-security-policy"]?.contains("default-src 'none'") == true)
            #expect(first.headers["referrer-policy"] == "no-referrer" && first.headers["cache-control"] == "no-store")
            #expect(first.headers["content-type"]?.hasPrefix("text/html") == true)

            let proof = try await server.page("/activate/device", form: ["code": invitation.code, "device": "totp"])
            #expect(proof.status == 200 && proof.html.contains("<svg"))
            var totp = TOTPDevice(secret: try #require(proof.element("secret").flatMap(Base32.decode)))
            let mismatch = try await server.page("/activate/complete", form: [
                "code": invitation.code, "username": "nora", "password": "correct horse battery", "password2": "correct horse batterx",
                "otp": await totp.next()])
            #expect(mismatch.status == 400 && mismatch.element("error")?.contains("differ") == true)
            let done = try await server.page("/activate/complete", form: [
                "code": invitation.code, "username": "Nora", "password": "correct horse battery", "password2": "correct horse battery",
                "otp": await totp.next()])
            #expect(done.status == 200, "\(done.html)")
            let userCode = try #require(done.element("usercode"))
            #expect(userCode.count == 19 && done.html.contains("non può essere recuperato"))
            #expect(try await server.services.store.holder(id: holder.id)?.state == .active)
            // The page's user code works for self-service; the invitation does not work twice.
            _ = try await service.authentication.checkUserCode(username: "nora", userCode: userCode)
            let again = try await server.page("/activate?code=\(invitation.code)")
            #expect(again.status == 410 && again.element("error")?.isEmpty == false)

            // The holder sees their state on the status page and through the route `sigillo status` uses.
            let status = try await server.page("/status", form: ["username": "nora", "password": "correct horse battery"])
            #expect(status.status == 200 && status.html.contains("data-state=\"active\""))
            let json = try await server.post("/selfservice/v1/status", ["username": "nora", "password": "correct horse battery"])
            #expect(json.status == 200 && json.json["state"] as? String == "active")
            #expect(try await server.post("/selfservice/v1/status", ["username": "nora", "password": "wrong password!"]).error == "invalid_password")
            let status2 = try await runOffPool(SignCLITests.sigillo, ["status", "--username", "nora", "--password-stdin", "--server", server.baseURL, "--ca", server.tlsCAFile],
                                              input: Data("correct horse battery\n".utf8))
            #expect(status2.status == 0 && status2.output.contains("state       active"), "\(status2.output)")
            // As `sigillo sign` does, `status` takes the password from SIGILLO_PASSWORD (nothing on standard input, no
            // terminal); without it and without --password-stdin it says where a password can come from.
            let statusArguments = ["status", "--username", "nora", "--server", server.baseURL, "--ca", server.tlsCAFile]
            var withPassword = TestHSM.environment
            withPassword["SIGILLO_PASSWORD"] = "correct horse battery"
            let fromEnvironment = try await runOffPool(SignCLITests.sigillo, statusArguments, environment: withPassword)
            #expect(fromEnvironment.status == 0 && fromEnvironment.output.contains("state       active"), "\(fromEnvironment.output)")
            var wrongPassword = TestHSM.environment
            wrongPassword["SIGILLO_PASSWORD"] = "wrong password!"
            let refused = try await runOffPool(SignCLITests.sigillo, statusArguments, environment: wrongPassword)
            #expect(refused.status != 0 && refused.output.contains("invalid_password"), "\(refused.output)")
            var noPassword = TestHSM.environment
            noPassword["SIGILLO_PASSWORD"] = nil
            let missing = try await runOffPool(SignCLITests.sigillo, statusArguments, environment: noPassword)
            #expect(missing.status != 0 && missing.output.contains("SIGILLO_PASSWORD"), "\(missing.output)")
        }
    }

    @Test("recovery routes: username and reset mails, reset with OTP, reused link 410, device rebind, lost user code page")
    func recoveryRoutes() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            var account = try await server.activate(name: "Olga", device: .hotp)
            let store = server.services.store
            #expect(try await server.post("/recovery/v1/username", ["email": "nobody@example.it"]).status == 202)
            #expect(try await server.post("/recovery/v1/username", ["email": account.holder.email]).status == 202)
            #expect(try await store.mails().last?.body.contains(account.username) == true)
            #expect(try await server.post("/recovery/v1/password/request", ["account": account.holder.email]).status == 202)
            let body = try #require(try await store.mails().last?.body)
            let code = try #require(CapturingNotifier.linkCode(in: body))
            // The page behind the link asks for the new password and an OTP.
            let resetPage = try await server.page("/recovery/password?code=\(code)")
            #expect(resetPage.status == 200 && resetPage.html.contains("name=\"newPassword\"") && resetPage.html.contains("name=\"otp\""))
            let reset = try await server.post("/recovery/v1/password/reset", ["code": code, "otp": account.nextOTP(), "newPassword": "a brand new secret"])
            #expect(reset.status == 200, "\(reset.json)")
            let reused = try await server.post("/recovery/v1/password/reset", ["code": code, "otp": account.nextOTP(), "newPassword": "another new secret"])
            #expect(reused.status == 410 && reused.error == "link_expired")
            let reusedPage = try await server.page("/recovery/password?code=\(code)")
            #expect(reusedPage.status == 410)
            #expect(try await server.post("/csc/v1/auth/login", basic: (account.username, "a brand new secret")).status == 200)

            // Device rebind needs the user code, which this fixture holder does not have: refused.
            let refused = try await server.post("/recovery/v1/device/begin", ["username": account.username, "password": "a brand new secret", "userCode": "AAAA-BBBB-CCCC-DDDD", "device": "totp"])
            #expect(refused.status == 400 && refused.error == "invalid_request")
            // Lost user code: the page says there is no recovery and offers revocation with password and OTP.
            let lost = try await server.page("/recovery/usercode")
            #expect(lost.status == 200 && lost.element("no-recovery") != nil && lost.html.contains("action=\"/recovery/usercode\""))
            let revoked = try await server.page("/recovery/usercode", form: ["username": account.username, "password": "a brand new secret", "otp": account.nextOTP()])
            #expect(revoked.status == 200 && revoked.element("result")?.contains("definitiva") == true, "\(revoked.html)")
            #expect(try await store.holder(id: account.holder.id)?.state == .revoked)
        }
    }

    @Test("mobile change: the page asks for the new number, codes go to both numbers, both are needed (page and JSON route)")
    func mobileChange() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Rita", device: .hotp)
            let oldMobile = account.holder.mobile
            let start = try await server.page("/recovery/mobile")
            #expect(start.status == 200 && start.html.contains("name=\"mobile\"") && start.html.contains("action=\"/recovery/mobile/begin\""))
            let second = try await server.page("/recovery/mobile/begin", form: ["username": account.username, "password": account.password, "mobile": "+39 347 000 1122"])
            #expect(second.status == 200 && second.html.contains("name=\"newNumberOtp\"") && second.html.contains("122"), "\(second.html)")
            let texts = try server.lastSMS(2)
            #expect(texts.map(\.recipient) == [oldMobile, "+393470001122"])
            let wrong = try await server.page("/recovery/mobile", form: ["username": account.username, "password": account.password, "otp": texts[0].code, "newNumberOtp": "000000"])
            #expect(wrong.status == 400 && wrong.element("error") != nil)
            #expect(try await server.services.store.holder(id: account.holder.id)?.mobile == oldMobile)

            // The JSON route: begin again, then both codes.
            let begun = try await server.post("/recovery/v1/mobile/begin", ["username": account.username, "password": account.password, "mobile": "+393470001122"])
            #expect(begun.status == 200 && begun.json["newNumberSentTo"] as? String == "…122", "\(begun.json)")
            let taken = try await server.post("/recovery/v1/mobile/begin", ["username": account.username, "password": account.password, "mobile": oldMobile])
            #expect(taken.status == 400 && taken.error == "invalid_request")
            let codes = try server.lastSMS(2)
            let done = try await server.post("/recovery/v1/mobile/complete", ["username": account.username, "password": account.password, "otp": codes[0].code, "newNumberOtp": codes[1].code])
            #expect(done.status == 200 && done.json["mobile"] as? String == "…122", "\(done.json)")
            #expect(try await server.services.store.holder(id: account.holder.id)?.mobile == "+393470001122")
        }
    }
}

@Suite("Web pages with a moved clock: expired invitation, renewal")
struct WebPageClockTests {
    @Test("an invitation older than 12 months: the page says so and points to a new order")
    func expiredInvitationPage() async throws {
        let fixture = try TestToken()
        let clock = TestClock()
        try await LiveServer.with(fixture, clock: clock.serviceClock) { server in
            let service = server.services.domain
            let holder = try await service.enrollment.createHolder(givenName: "Elio", surname: "Riva", fiscalCode: TestData.fiscalCode(), email: "elio@example.it",
                                                        mobile: "+393471230002", actor: "op", recognized: true)
            let invitation = try await service.enrollment.invite(holderID: holder.id, actor: "op")
            clock.advance(366 * 86_400)
            let page = try await server.page("/activate?code=\(invitation.code)")
            #expect(page.status == 410 && page.element("error") != nil)
            #expect(page.html.contains("nuovo ordine") && page.html.contains("new order"))
            let api = try await server.post("/activation/v1/begin", ["code": invitation.code, "device": "totp"])
            #expect(api.status == 410 && api.error == "invitation_expired")
        }
    }

    @Test("renewal page and route: refused while far from expiry, then a new certificate; status shows active_expiring first")
    func renewal() async throws {
        let fixture = try TestToken()
        let clock = TestClock(Date().addingTimeInterval(-3 * 365 * 86_400))
        try await LiveServer.with(fixture, clock: clock.serviceClock) { server in
            var account = try await server.activate(name: "Dario", device: .hotp)
            let early = try await server.post("/selfservice/v1/renew", ["username": account.username, "password": account.password, "otp": account.nextOTP()])
            #expect(early.status == 409 && early.error == "illegal_transition")
            clock.advance(account.credential.notAfter.timeIntervalSince(clock.now) - 30 * 86_400)
            let status = try await server.post("/selfservice/v1/status", ["username": account.username, "password": account.password])
            #expect(status.json["state"] as? String == "active_expiring")
            let form = try await server.page("/renew")
            #expect(form.status == 200 && form.html.contains("name=\"otp\""))
            let renewed = try await server.page("/renew", form: ["username": account.username, "password": account.password, "otp": account.nextOTP()])
            #expect(renewed.status == 200 && renewed.element("result")?.contains("Nuovo certificato") == true, "\(renewed.html)")
            let credentials = try await server.services.store.credentials(holderID: account.holder.id)
            #expect(credentials.map(\.status) == [.revoked, .active])
            #expect(credentials.first?.revocationReason == .superseded)
            let after = try await server.post("/selfservice/v1/status", ["username": account.username, "password": account.password])
            #expect(after.json["state"] as? String == "active")
        }
    }
}
