import Foundation
import Hummingbird
import NIOCore
import PKCS11
import SigilloDomain

/// The holder's web pages on the public listener: activation from the invitation link, status, renewal and the
/// lost-credential flows. Server-rendered HTML forms; the same service functions as the JSON routes.
struct WebController: Sendable {
    let enrollment: Enrollment
    let recovery: Recovery
    let lifecycle: CredentialLifecycle

    typealias Form = [String: String]

    func addRoutes(to router: Router<SigilloContext>) {
        router.get("/") { _, _ in Self.page("home", title: "Sigillo") }

        // Activation: invitation link → device → proof + username/password → user code.
        router.get("activate") { request, _ in
            try await self.guarded(title: "Attivazione / activation") {
                let code = request.uri.queryParameters.get("code") ?? ""
                let holder = try await self.enrollment.invitationHolder(code: code)
                return Self.page("activate-device", title: "Attivazione / activation", [
                    "code": code, "name": holder.holder.fullName, "mobileEnd": String(holder.holder.mobile.suffix(3)),
                    "expires": Self.day(holder.expiresAt),
                ])
            }
        }
        router.post("activate/device") { request, context in
            try await self.guarded(title: "Attivazione / activation") {
                let form = try await Self.form(request, context)
                let device = try ActivationController.deviceChoice(kind: form["device"] ?? "", serial: form["serial"], seedHex: form["seed"])
                let challenge = try await self.enrollment.beginActivation(invitationCode: form["code"] ?? "", device: device)
                return Self.proofPage(challenge, title: "Attivazione: prova il dispositivo / prove your device", action: "/activate/complete",
                                      hidden: ["code": form["code"] ?? ""], chooseCredentials: true)
            }
        }
        router.post("activate/complete") { request, context in
            try await self.guarded(title: "Attivazione / activation") {
                let form = try await Self.form(request, context)
                let password = try Self.confirmed(form["password"], form["password2"])
                let activated = try await self.enrollment.activate(
                    invitationCode: form["code"] ?? "", username: form["username"] ?? "", password: password, otp: form["otp"] ?? "")
                return Self.page("activated", title: "Attivazione completata / activation complete", [
                    "userCode": activated.userCode, "username": (form["username"] ?? "").lowercased(), "credentialID": activated.credential.id,
                    "notAfter": Self.day(activated.credential.notAfter),
                ])
            }
        }

        // The holder's state.
        router.get("status") { _, _ in
            Self.form("Stato dell'utenza / account state", action: "/status", asks: ["askUsername", "askPassword"], button: "Mostra / show")
        }
        router.post("status") { request, context in
            try await self.guarded(title: "Stato dell'utenza / account state") {
                let form = try await Self.form(request, context)
                let status = try await self.recovery.status(username: form["username"] ?? "", password: form["password"] ?? "")
                return Self.page("status", title: "Stato dell'utenza / account state", [
                    "state": status.holder.state.rawValue, "stateLabel": status.holder.state.label, "expiring": status.holder.state == .expiring,
                    "credentials": status.credentials.map {
                        ["id": $0.id, "status": $0.status.rawValue, "serial": $0.serialNumber, "notAfter": Self.day($0.notAfter)] as [String: Any]
                    },
                ])
            }
        }

        // Renewal.
        router.get("renew") { _, _ in
            Self.form("Rinnovo del certificato / certificate renewal", action: "/renew", asks: ["askUsername", "askPassword", "askOTP"], button: "Rinnova / renew",
                      intro: "Il rinnovo è possibile negli ultimi 90 giorni: nuova chiave e nuovo certificato, stessa password e stesso dispositivo OTP. " + Self.smsHint)
        }
        router.post("renew") { request, context in
            try await self.guarded(title: "Rinnovo del certificato / certificate renewal") {
                let form = try await Self.form(request, context)
                if let sent = try await self.sendCodeIfAsked(form, purpose: .renewal, title: "Rinnovo del certificato / certificate renewal", action: "/renew",
                                                             button: "Rinnova / renew") { return sent }
                let credential = try await self.lifecycle.renew(username: form["username"] ?? "", password: form["password"] ?? "", otp: form["otp"] ?? "")
                return Self.message("Certificato rinnovato / certificate renewed", kind: "ok",
                                    "Nuovo certificato \(credential.serialNumber) valido fino al \(Self.day(credential.notAfter)). Il precedente è revocato (sostituito).")
            }
        }

        self.addRecoveryRoutes(to: router)
    }

    private func addRecoveryRoutes(to router: Router<SigilloContext>) {
        router.get("recovery") { _, _ in Self.page("recovery", title: "Credenziali smarrite / lost credentials") }

        router.get("recovery/username") { _, _ in
            Self.form("Nome utente dimenticato / forgotten username", action: "/recovery/username", asks: ["askEmail"], button: "Invia / send",
                      intro: "Ti invieremo il nome utente all'indirizzo email registrato. / We'll mail your username to the registered address.")
        }
        router.post("recovery/username") { request, context in
            try await self.guarded(title: "Nome utente dimenticato / forgotten username") {
                try await self.recovery.remindUsername(email: try await Self.form(request, context)["email"] ?? "")
                return Self.message("Nome utente dimenticato / forgotten username", kind: "ok", Self.mailSent)
            }
        }

        router.get("recovery/password") { request, _ in
            try await self.guarded(title: "Password dimenticata / forgotten password") {
                guard let code = request.uri.queryParameters.get("code") else {
                    return Self.form("Password dimenticata / forgotten password", action: "/recovery/password/request", asks: ["askAccount"], button: "Invia il link / send the link",
                                     intro: "Riceverai per email un link valido un'ora. / You'll get a link by mail, valid for one hour.")
                }
                // Opening the link sends nothing (a GET has no side effect): an SMS code is sent by the button.
                let link = try await self.recovery.openPasswordReset(code: code)
                if link.otpKind == .sms {
                    return Self.form("Nuova password / new password", action: "/recovery/password/sms", asks: [], button: "Inviami il codice via SMS / text me the code",
                                     intro: "Ti invieremo un codice via SMS al numero registrato. / We will text a code to your registered number.", hidden: ["code": code])
                }
                return Self.form("Nuova password / new password", action: "/recovery/password", asks: ["askNewPassword", "askOTP"], button: "Cambia password / change password",
                                 intro: "Serve anche un codice OTP del tuo dispositivo. / You also need a code from your OTP device.", hidden: ["code": code])
            }
        }
        router.post("recovery/password/sms") { request, context in
            try await self.guarded(title: "Nuova password / new password") {
                let code = try await Self.form(request, context)["code"] ?? ""
                _ = try await self.recovery.sendPasswordResetCode(code: code)
                return Self.form("Nuova password / new password", action: "/recovery/password", asks: ["askNewPassword", "askOTP"], button: "Cambia password / change password",
                                 intro: "Ti abbiamo inviato un codice via SMS. / We sent you a code by SMS.", hidden: ["code": code])
            }
        }
        router.post("recovery/password/request") { request, context in
            try await self.guarded(title: "Password dimenticata / forgotten password") {
                try await self.recovery.requestPasswordReset(usernameOrEmail: try await Self.form(request, context)["account"] ?? "")
                return Self.message("Password dimenticata / forgotten password", kind: "ok", Self.mailSent)
            }
        }
        router.post("recovery/password") { request, context in
            try await self.guarded(title: "Nuova password / new password") {
                let form = try await Self.form(request, context)
                let password = try Self.confirmed(form["newPassword"], form["newPassword2"])
                try await self.recovery.resetPassword(code: form["code"] ?? "", otp: form["otp"] ?? "", newPassword: password)
                return Self.message("Password cambiata / password changed", kind: "ok",
                                    "La nuova password è attiva; le sessioni aperte sono state chiuse. / The new password is active; open sessions were ended.")
            }
        }

        router.get("recovery/device") { _, _ in
            Self.form("Dispositivo OTP smarrito o guasto / lost or broken OTP device", action: "/recovery/device",
                      asks: ["askUsername", "askPassword", "askUserCode"], button: "Continua / continue",
                      intro: "Dimostra chi sei con password e codice utente; poi apri il link che ti mandiamo all'indirizzo registrato e associa il nuovo dispositivo. / Prove who you are with password and user code; then open the link we mail to your registered address and bind the new device.")
        }
        router.post("recovery/device") { request, context in
            try await self.guarded(title: "Nuovo dispositivo OTP / new OTP device") {
                let form = try await Self.form(request, context)
                let mailedTo = try await self.recovery.beginDeviceRebind(username: form["username"] ?? "", password: form["password"] ?? "", userCode: form["userCode"] ?? "")
                return Self.message("Nuovo dispositivo OTP / new OTP device", kind: "ok",
                                    "Abbiamo inviato un link di conferma a \(mailedTo): aprilo per scegliere il nuovo dispositivo. / We mailed a confirmation link to \(mailedTo): open it to choose the new device.")
            }
        }
        router.get("recovery/device/confirm") { request, _ in
            try await self.guarded(title: "Nuovo dispositivo OTP / new OTP device") {
                let code = request.uri.queryParameters.get("code") ?? ""
                try await self.recovery.checkDeviceRebindRequest(token: code)
                return Self.form("Nuovo dispositivo OTP / new OTP device", action: "/recovery/device/confirm", asks: ["askDevice"], button: "Continua / continue",
                                 intro: "Scegli il nuovo dispositivo: il vecchio smetterà di funzionare appena il nuovo è provato. / Choose the new device: the old one stops working once the new one is proven.",
                                 hidden: ["code": code])
            }
        }
        router.post("recovery/device/confirm") { request, context in
            try await self.guarded(title: "Nuovo dispositivo OTP / new OTP device") {
                let form = try await Self.form(request, context)
                let device = try ActivationController.deviceChoice(kind: form["device"] ?? "", serial: form["serial"], seedHex: nil)
                let rebind = try await self.recovery.confirmDeviceRebind(token: form["code"] ?? "", device: device)
                return Self.proofPage(rebind.challenge, title: "Nuovo dispositivo: prova / prove the new device", action: "/recovery/device/complete",
                                      hidden: ["token": rebind.token], chooseCredentials: false)
            }
        }
        router.post("recovery/device/complete") { request, context in
            try await self.guarded(title: "Nuovo dispositivo OTP / new OTP device") {
                let form = try await Self.form(request, context)
                try await self.recovery.completeDeviceRebind(token: form["token"] ?? "", otp: form["otp"] ?? "")
                return Self.message("Nuovo dispositivo OTP / new OTP device", kind: "ok",
                                    "Il nuovo dispositivo è attivo; il precedente non funziona più. / The new device is active; the old one no longer works.")
            }
        }

        router.get("recovery/usercode") { _, _ in
            Self.page("usercode-lost", title: "Codice utente smarrito / lost user code", Self.formValues(
                action: "/recovery/usercode", asks: ["askUsername", "askPassword", "askOTP"], button: "Revoca il certificato / revoke the certificate", intro: Self.smsHint))
        }
        router.post("recovery/usercode") { request, context in
            try await self.guarded(title: "Codice utente smarrito / lost user code") {
                let form = try await Self.form(request, context)
                if let sent = try await self.sendCodeIfAsked(form, purpose: .revocation, title: "Codice utente smarrito / lost user code", action: "/recovery/usercode",
                                                             button: "Revoca il certificato / revoke the certificate") { return sent }
                let holder = try await self.recovery.authenticateForRevocation(username: form["username"] ?? "", password: form["password"] ?? "", otp: form["otp"] ?? "")
                _ = try await self.lifecycle.revokeHolder(holderID: holder.id, reason: .cessationOfOperation, actor: "holder:\(holder.id)")
                return Self.message("Certificato revocato / certificate revoked", kind: "ok",
                                    "La revoca è definitiva. Per firmare di nuovo serve un nuovo ordine. / Revocation is final; a new order is needed to sign again.")
            }
        }

        router.get("recovery/mobile") { _, _ in
            Self.form("Cambio del numero di cellulare / change of mobile number", action: "/recovery/mobile/begin", asks: ["askUsername", "askPassword", "askMobile"],
                      button: "Invia i codici / send the codes",
                      intro: "Ti invieremo un codice al numero attuale e uno al nuovo numero. Se non hai più il numero attuale, rivolgiti all'operatore. / "
                          + "We send a code to the current number and one to the new number. If you no longer have the current number, ask the operator.")
        }
        router.post("recovery/mobile/begin") { request, context in
            try await self.guarded(title: "Cambio del numero di cellulare / change of mobile number") {
                let form = try await Self.form(request, context)
                let started = try await self.recovery.beginMobileChange(username: form["username"] ?? "", password: form["password"] ?? "", newMobile: form["mobile"] ?? "")
                return Self.form("Cambio del numero di cellulare / change of mobile number", action: "/recovery/mobile",
                                 asks: ["askUsername", "askPassword", "askOTP", "askNewNumberOTP"], button: "Cambia numero / change number",
                                 intro: "Codici inviati ai numeri che terminano con \(started.oldNumberEnd) (attuale) e \(started.newNumberEnd) (nuovo). / "
                                     + "Codes sent to the numbers ending in \(started.oldNumberEnd) (current) and \(started.newNumberEnd) (new).")
            }
        }
        router.post("recovery/mobile") { request, context in
            try await self.guarded(title: "Cambio del numero di cellulare / change of mobile number") {
                let form = try await Self.form(request, context)
                let holder = try await self.recovery.completeMobileChange(
                    username: form["username"] ?? "", password: form["password"] ?? "", oldNumberCode: form["otp"] ?? "", newNumberCode: form["newNumberOtp"] ?? "")
                return Self.message("Numero cambiato / number changed", kind: "ok", "Il numero registrato ora termina con \(holder.mobile.suffix(3)).")
            }
        }
    }

    // MARK: Rendering

    static let mailSent = "Se l'utenza esiste, abbiamo inviato un'email all'indirizzo registrato. / If the account exists, a mail is on its way to the registered address."

    /// Runs a page handler; a domain error becomes the same page's title with the error shown, and the status the
    /// JSON routes would give.
    private func guarded(title: String, _ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as SigilloError {
            let status = APIError(error).status
            var values: [String: Any] = ["error": ["code": error.code.rawValue, "message": error.message]]
            if error.code == .invitationExpired {
                values["text"] = "L'invito è scaduto (validità 12 mesi): serve un nuovo ordine. / The invitation expired (12 months): a new order is needed."
                values["kind"] = "warning"
            }
            values["link"] = ["href": "/", "label": "Torna all'inizio / start again"]
            return Self.page("message", title: title, values, status: status)
        }
    }

    static func page(_ name: String, title: String, _ values: [String: Any] = [:], status: HTTPResponse.Status = .ok) -> Response {
        var values = values
        values["title"] = title
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        // Codes travel in links: never leak them to other sites, never run foreign code, never frame the pages.
        headers[.contentSecurityPolicy] = self.contentSecurityPolicy(formAction: "'self'")
        headers[.init("Referrer-Policy")!] = "no-referrer"
        headers[.init("X-Content-Type-Options")!] = "nosniff"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: Templates.render(name, values))))
    }

    /// The pages' policy: no script, no foreign resource, no framing; forms post to `formAction` only.
    static func contentSecurityPolicy(formAction: String) -> String {
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action \(formAction); frame-ancestors 'none'; base-uri 'none'"
    }

    static func message(_ title: String, kind: String, _ text: String) -> Response {
        self.page("message", title: title, ["kind": kind, "text": text])
    }

    static func formValues(action: String, asks: [String], button: String, intro: String? = nil, hidden: [String: String] = [:]) -> [String: Any] {
        var values: [String: Any] = ["action": action, "button": button, "hidden": hidden.sorted { $0.key < $1.key }.map { ["name": $0.key, "value": $0.value] }]
        for ask in asks { values[ask] = true }
        if let intro { values["intro"] = intro }
        return values
    }

    /// Holders with codes by SMS leave the OTP empty to have one sent for exactly this action.
    static let smsHint = "Codici via SMS? Lascia vuoto il codice OTP: te lo inviamo. / Codes by SMS? Leave the OTP empty and we text you one."

    /// With the OTP left empty, sends the SMS code for `purpose` (after the password) and shows the form again.
    func sendCodeIfAsked(_ form: Form, purpose: SMSPurpose, title: String, action: String, button: String) async throws -> Response? {
        guard (form["otp"] ?? "").trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
        try await self.recovery.sendSelfServiceCode(username: form["username"] ?? "", password: form["password"] ?? "", purpose: purpose)
        return Self.form(title, action: action, asks: ["askUsername", "askPassword", "askOTP"], button: button,
                         intro: "Ti abbiamo inviato un codice via SMS: inseriscilo con nome utente e password. / We texted you a code: enter it with your username and password.")
    }

    static func form(_ title: String, action: String, asks: [String], button: String, intro: String? = nil, hidden: [String: String] = [:]) -> Response {
        self.page("login", title: title, self.formValues(action: action, asks: asks, button: button, intro: intro, hidden: hidden))
    }

    static func proofPage(_ challenge: ActivationChallenge, title: String, action: String, hidden: [String: String], chooseCredentials: Bool) -> Response {
        var values: [String: Any] = [
            "action": action, "chooseCredentials": chooseCredentials,
            "hidden": hidden.sorted { $0.key < $1.key }.map { ["name": $0.key, "value": $0.value] },
        ]
        switch challenge.kind {
        case .totp:
            values["totp"] = true
            values["qr"] = challenge.otpauthURI.flatMap { QRCode.svg($0) } ?? ""
            values["secret"] = challenge.secret.map { Base32.encode($0, padding: false) } ?? ""
        case .hotp: values["hotp"] = true
        case .sms:
            values["sms"] = true
            values["sentTo"] = challenge.smsSentTo ?? ""
        }
        return self.page("device-proof", title: title, values)
    }

    static func day(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "Europe/Rome")
        formatter.dateFormat = "dd/MM/yyyy"
        return formatter.string(from: date)
    }

    static func confirmed(_ password: String?, _ again: String?) throws -> String {
        guard let password, !password.isEmpty else { throw SigilloError(.invalidRequest, "choose a password") }
        guard password == again else { throw SigilloError(.invalidRequest, "the two passwords differ / le due password non coincidono") }
        return password
    }

    /// An `application/x-www-form-urlencoded` body (64 KiB at most).
    static func form(_ request: Request, _ context: SigilloContext) async throws -> Form {
        let buffer = try await request.body.collect(upTo: BodyLimits.holderForms)
        let text = String(buffer: buffer)
        var form = Form()
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (part: Substring) -> String? in String(part).replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let name = parts.first.flatMap(decode) else { throw SigilloError(.invalidRequest, "the form is malformed") }
            guard let value = parts.count > 1 ? decode(parts[1]) : "" else { throw SigilloError(.invalidRequest, "the form is malformed") }
            form[name] = value
        }
        return form
    }
}
