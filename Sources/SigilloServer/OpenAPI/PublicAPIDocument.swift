import PKCS11
import SigilloDomain

/// The documents of the three listeners. Each function adds its routes' operations where the routes are registered
/// (`SigilloApplication.router`, `AdminApplication.router`, `PKIApplication.router`): a route added there and not here
/// makes `OpenAPITests` fail.
public enum OpenAPI {
    /// The public HTTPS listener: CSC v1/v2, activation, recovery, self-service, the holder's web pages, health and the
    /// relying parties' files; `signatures/timestamp` when a TSA is configured.
    public static func publicListener(timeStamps: Bool) -> OpenAPIDocument {
        var document = OpenAPIDocument(
            title: "Sigillo public API",
            summary: "Remote signing for holders (Cloud Signature Consortium API v1 and v2), their activation, lost credentials and self-service, "
                + "the holder's web pages, health checks, and the CA's certificate, CRL and OCSP. Served by the public HTTPS listener.")
        self.addCommonSchemas(to: &document)
        self.addHealth(to: &document)
        self.addDocument(to: &document)
        self.addCSC(to: &document, timeStamps: timeStamps)
        self.addActivation(to: &document)
        self.addRecovery(to: &document)
        self.addSelfService(to: &document)
        self.addWebPages(to: &document)
        self.addPKI(to: &document)
        self.addOAuth2(to: &document)
        return document
    }

    // MARK: Shared pieces

    static func addDocument(to document: inout OpenAPIDocument) {
        document.tag("meta", "This document")
        document.add("GET", "/openapi.json", tag: "meta", summary: "This OpenAPI 3.1 document", responses: [
            200: Reply.json("The document of this listener", ["type": "object"]),
        ])
    }

    /// The JSON shapes used on several routes.
    static func addCommonSchemas(to document: inout OpenAPIDocument) {
        let challenge: [String: JSONValue] = [
            "device": Schema.string("The OTP device: totp (an app), hotp (a hardware token) or sms", values: OTPKind.allCases.map(\.rawValue)),
            "otpauthURI": Schema.string("For an app: the otpauth:// URI (the QR code's content)"),
            "secret": Schema.string("For an app: the secret, base32"),
            "smsSentTo": Schema.string("For SMS: the end of the number the code went to"),
        ]
        document.schema("Challenge", Schema.object(challenge, required: ["device"], description: "What the holder needs to prove a new OTP device"))
        document.schema("DeviceChallenge", Schema.object(challenge.merging(["token": Schema.string("Completes the binding")]) { $1 }, required: ["device", "token"],
                                                         description: "A new device's challenge and the token that completes its binding"))
        document.schema("CredentialStatus", Schema.object([
            "credentialID": Schema.string, "status": Schema.string("active, suspended or revoked"), "serialNumber": Schema.string("Certificate serial, hex"),
            "notBefore": Schema.string("ISO 8601", format: "date-time"), "notAfter": Schema.string("ISO 8601", format: "date-time"),
            "revocationReason": Schema.string("RFC 5280 reason name", values: RevocationReason.allCases.map(\.rawValue)),
        ], required: ["credentialID", "status", "serialNumber", "notBefore", "notAfter"]))
        document.schema("Outcome", Schema.object([
            "status": Schema.string("What happened"), "message": Schema.string, "sessionsEnded": Schema.boolean,
            "mobile": Schema.string("The end of the new number"),
        ], required: ["status"], description: "The answer of a route that only reports what happened"))
        document.schema("Health", Schema.object([
            "status": Schema.string("ok or unavailable", values: ["ok", "unavailable"]),
            "checks": ["type": "object", "additionalProperties": Schema.string("ok or unavailable", values: ["ok", "unavailable"])],
        ], required: ["status", "checks"]))
    }

    static func addHealth(to document: inout OpenAPIDocument) {
        document.tag("health", "Liveness and readiness, for load balancers and orchestrators")
        let live = Reply.json("The process answers", Schema.ref("Health"))
        document.add("GET", "/health", tag: "health", summary: "Liveness (as /health/live)", responses: [200: live])
        document.add("GET", "/health/live", tag: "health", summary: "Liveness: the process answers", responses: [200: live])
        document.add("GET", "/health/ready", tag: "health", summary: "Readiness: the token and the store answer", responses: [
            200: Reply.json("Ready", Schema.ref("Health")),
            503: Reply.json("The token or the store does not answer (`checks` says which)", Schema.ref("Health")),
        ])
    }

    /// Errors every JSON route may answer, plus `statuses` (each with what it means on this route).
    static func errors(_ statuses: [Int: String] = [:], anonymous: Bool = true) -> [Int: JSONValue] {
        var replies: [Int: JSONValue] = [
            400: Reply.error("`invalid_request`: malformed JSON, a missing or invalid field (and the domain's refusals, by code)"),
            413: Reply.error("`payload_too_large`: the body is over the route's limit"),
            503: Reply.error("`temporarily_unavailable` / `token_unavailable` / `database_unavailable`: the token (HSM) or the database does not answer"),
        ]
        if anonymous {
            replies[429] = Reply.error("`too_many_requests`: over a rate limit (`Retry-After` says when to try again)")
        }
        for (status, description) in statuses {
            replies[status] = Reply.error(description)
        }
        return replies
    }

    // MARK: CSC

    static func addCSC(to document: inout OpenAPIDocument, timeStamps: Bool) {
        document.tag("csc", "Cloud Signature Consortium API v1 (1.0.4) and v2 (2.0): `POST /csc/v1/<method>`, `POST /csc/v2/<method>`. "
            + "Bodies are read leniently: unknown members ignored, v1 names accepted on v2 and back, numbers and booleans as strings.")
        document.schema("CSCInfo", Schema.object([
            "specs": Schema.string("1.0.4.0 or 2.0.0.0"), "name": Schema.string, "logo": Schema.string, "region": Schema.string, "lang": Schema.string,
            "description": Schema.string, "authType": Schema.array(Schema.string), "methods": Schema.array(Schema.string),
            "oauth2": Schema.string("The OAuth2 authorization server's base URI (`oauth2code` in `authType`)"),
            "oauth2Issuer": Schema.string("v2: its issuer identifier (RFC 8414)"), "supportsRar": Schema.boolean,
            "signAlgorithms": Schema.object(["algos": Schema.array(Schema.string("OID"))], required: ["algos"], description: "v2 only"),
        ], required: ["specs", "name", "logo", "region", "lang", "description", "authType", "methods"]))
        document.schema("CSCLogin", Schema.object([
            "access_token": Schema.string("The bearer token for the other methods"), "token_type": Schema.string("Bearer"),
            "expires_in": Schema.integer("Seconds"),
        ], required: ["access_token"]))
        document.schema("CSCAuthorization", Schema.object([
            "SAD": Schema.string("Signature activation data: for these hashes, this credential, numSignatures signatures"),
            "expiresIn": Schema.integer("Seconds"),
        ], required: ["SAD"]))
        let factor = Schema.object([
            "presence": Schema.string, "type": Schema.string, "format": Schema.string, "label": Schema.string, "description": Schema.string, "ID": Schema.string,
        ])
        document.schema("CSCCredentialInfo", Schema.object([
            "description": Schema.string,
            "key": Schema.object([
                "status": Schema.string("enabled or disabled"), "algo": Schema.array(Schema.string("OID")), "len": Schema.integer("Bits"),
                "curve": Schema.string("OID of the curve (EC keys)"),
            ]),
            "cert": Schema.object([
                "status": Schema.string("valid, expired, revoked, suspended or invalid"),
                "certificates": Schema.array(Schema.string("Base64 DER"), description: "The holder's certificate, then (chain) the CA's up to the root"),
                "issuerDN": Schema.string, "subjectDN": Schema.string, "serialNumber": Schema.string, "validFrom": Schema.string("YYYYMMDDHHMMSSZ"),
                "validTo": Schema.string("YYYYMMDDHHMMSSZ"),
            ]),
            "authMode": Schema.string("explicit"), "SCAL": Schema.string("2"), "multisign": Schema.integer("Most signatures per authorization"),
            "lang": Schema.string, "PIN": factor, "OTP": factor,
            "credentialID": Schema.string("v2 credentials/list entries"),
            "auth": Schema.object([
                "mode": Schema.string("explicit: password and OTP in authData (wallets use the OAuth2 credential scope)"),
                "expression": Schema.string("PIN AND OTP"),
                "objects": Schema.array(Schema.object([
                    "type": Schema.string, "id": Schema.string("PIN or OTP, as authData names it"), "format": Schema.string, "label": Schema.string,
                    "description": Schema.string, "generator": Schema.string("The OTP device: totp, hotp or sms"),
                ], required: ["type", "id"])),
            ], required: ["mode"], description: "v2: how signatures are authorized"),
        ]))
        let credentialID = Schema.string("From credentials/list")
        let hashes = Schema.array(Schema.string("Digest, base64"))
        for version in [1, 2] {
            let prefix = "/csc/v\(version)/"
            let v1 = version == 1
            func bearer(_ name: String, _ summary: String, request: JSONValue, success: [Int: JSONValue], extra: [Int: String] = [:]) {
                var responses = self.errors([
                    401: "`invalid_token` / `expired_token`: the bearer token is missing, unknown, revoked or expired",
                    403: "`insufficient_scope`: an OAuth2 credential token only signs its own hashes (signatures/signHash)",
                ].merging(extra) { $1 }, anonymous: false)
                responses.merge(success) { $1 }
                document.add("POST", prefix + name, tag: "csc", summary: summary, security: .bearer, request: Body.json(request, required: false), responses: responses)
            }
            document.add("POST", prefix + "info", tag: "csc", summary: "The service and the methods it offers (v\(version))",
                         request: Body.json(Schema.object(["lang": Schema.string], closed: false), required: false),
                         responses: self.errors(anonymous: false).merging([200: Reply.json("The service", Schema.ref("CSCInfo"))]) { $1 })
            document.add("POST", prefix + "auth/login", tag: "csc", summary: "An access token for the holder's username and password (HTTP Basic)", security: .basic,
                         request: Body.json(Schema.object(["rememberMe": Schema.boolean], closed: false), required: false),
                         responses: self.errors([401: "`authentication_error` (wrong username or password) / `invalid_request` (no HTTP Basic credentials)"])
                             .merging([200: Reply.json("The access token", Schema.ref("CSCLogin"))]) { $1 })
            bearer("auth/revoke", "Ends an access token (the caller's, or `token`)", request: Schema.object(["token": Schema.string], closed: false),
                   success: [204: Reply.empty("Revoked")])
            bearer("credentials/list", "The holder's credentials" + (v1 ? "" : "; with `credentialInfo`, each one's credentials/info"),
                   request: Schema.object(v1 ? [:] : [
                       "credentialInfo": Schema.boolean, "onlyValid": Schema.boolean, "certificates": Schema.string("none, single (default) or chain"),
                       "certInfo": Schema.boolean, "authInfo": Schema.boolean,
                   ], closed: false),
                   success: [200: Reply.json("Credential IDs", Schema.object([
                       "credentialIDs": Schema.array(Schema.string),
                       "credentialInfos": Schema.array(Schema.ref("CSCCredentialInfo"), description: "v2, with credentialInfo: each with its credentialID"),
                       "onlyValid": Schema.boolean,
                   ], required: ["credentialIDs"]))],
                   extra: [:])
            bearer("credentials/info", "A credential: key, certificate (none, single or chain), authentication factors",
                   request: Schema.object([
                       "credentialID": credentialID, "certificates": Schema.string("none, single (default) or chain", values: ["none", "single", "chain"]),
                       "certInfo": Schema.boolean, "authInfo": Schema.boolean,
                   ], required: ["credentialID"], closed: false),
                   success: [200: Reply.json("The credential", Schema.ref("CSCCredentialInfo"))])
            let authorize = v1
                ? Schema.object([
                    "credentialID": credentialID, "numSignatures": Schema.integer, "hash": hashes, "hashAlgo": Schema.string("OID (else from the digest length)"),
                    "PIN": Schema.string("The holder's password"), "OTP": Schema.string("A one-time password"),
                ], required: ["credentialID", "numSignatures", "hash", "PIN", "OTP"], closed: false)
                : Schema.object([
                    "credentialID": credentialID, "numSignatures": Schema.integer, "hashes": hashes,
                    "hashAlgorithmOID": Schema.string("OID (else from the digest length)"),
                    "authData": Schema.array(Schema.object(["id": Schema.string("PIN or OTP", values: ["PIN", "OTP"]), "value": Schema.string], required: ["id", "value"], closed: false)),
                ], required: ["credentialID", "numSignatures", "hashes", "authData"], closed: false)
            bearer("credentials/authorize", "A SAD for these hashes, with the password and an OTP", request: authorize,
                   success: [200: Reply.json("The SAD", Schema.ref("CSCAuthorization"))],
                   extra: [400: "`invalid_request`; a wrong password or OTP: " + (v1 ? "`invalid_pin` / `invalid_otp`" : "`invalid_authentication_data`"),
                           403: "`pin_locked` / `otp_locked` / `credential_disabled` / `certificate_invalid`",
                           429: "`too_many_requests`"])
            bearer("credentials/sendOTP", "Sends an SMS code for the next authorization (SMS holders)", request: Schema.object(["credentialID": credentialID], required: ["credentialID"], closed: false),
                   success: [204: Reply.empty("Sent")], extra: [429: "`too_many_requests`: more than 5 SMS codes in 15 minutes"])
            bearer("credentials/extendTransaction", "A new SAD for the rest of an authorization (30 minutes at most from it)",
                   request: Schema.object(["credentialID": credentialID, "SAD": Schema.string], required: ["credentialID", "SAD"], closed: false),
                   success: [200: Reply.json("The new SAD", Schema.ref("CSCAuthorization"))], extra: [403: "`credential_disabled` / `certificate_invalid`"])
            bearer("signatures/signHash", "Signs the authorized hashes in the token",
                   request: Schema.object([
                       "credentialID": credentialID, "SAD": Schema.string("From credentials/authorize; none with an OAuth2 credential token (the token is the SAD)"),
                       (v1 ? "hash" : "hashes"): hashes,
                       (v1 ? "hashAlgo" : "hashAlgorithmOID"): Schema.string("OID"), "signAlgo": Schema.string("OID"),
                       "signAlgoParams": Schema.string("Base64 DER RSASSA-PSS-params"),
                   ], required: ["credentialID", v1 ? "hash" : "hashes", "signAlgo"], closed: false),
                   success: [200: Reply.json("Signatures, base64, in the order of the hashes",
                                             Schema.object(["signatures": Schema.array(Schema.string)], required: ["signatures"]))],
                   extra: [403: "`credential_disabled` / `certificate_invalid` / `pin_locked` / `otp_locked` / `insufficient_scope` (a credential token for "
                       + "other hashes or another credential)"])
            if !v1 && timeStamps {
                bearer("signatures/timestamp", "An RFC 3161 time-stamp token over one digest",
                       request: Schema.object([
                           "hash": Schema.string("Digest, base64"), "hashAlgo": Schema.string("OID: SHA-256, SHA-384 or SHA-512"),
                           "nonce": Schema.string("1 to 32 bytes, hex"), "clientData": Schema.string,
                       ], required: ["hash", "hashAlgo"], closed: false),
                       success: [200: Reply.json("The time-stamp token", Schema.object(["timestamp": Schema.string("Base64 DER TimeStampToken")], required: ["timestamp"]))],
                       extra: [429: "`too_many_requests`: the TSA's signing budget is spent"])
            }
        }
    }

    // MARK: Activation, recovery, self-service (JSON)

    static func addActivation(to document: inout OpenAPIDocument) {
        document.tag("activation", "The holder activates an invitation: chooses an OTP device, proves it, chooses username and password")
        document.schema("Activated", Schema.object([
            "credentialID": Schema.string, "serialNumber": Schema.string, "notAfter": Schema.string("ISO 8601", format: "date-time"),
            "certificate": Schema.string("Base64 DER"), "userCode": Schema.string("The emergency code, shown once"),
        ], required: ["credentialID", "serialNumber", "notAfter", "certificate"]))
        document.add("POST", "/activation/v1/begin", tag: "activation", summary: "Chooses the OTP device for an invitation",
                     request: Body.json(Schema.object([
                         "code": Schema.string("The activation code"), "device": Schema.string("totp (app), hotp (hardware token) or sms", values: ["totp", "app", "hotp", "hardware", "sms"]),
                         "serial": Schema.string("Hardware token serial"), "seed": Schema.string("Hardware token seed, hex or base32 (else from the inventory)"),
                         "digits": Schema.integer,
                     ], required: ["code", "device"], closed: false)),
                     responses: self.errors([404: "`not_found`: no such invitation", 410: "`invitation_used` / `invitation_expired`"])
                         .merging([200: Reply.json("The device's challenge", Schema.ref("Challenge"))]) { $1 })
        document.add("POST", "/activation/v1/complete", tag: "activation", summary: "Proves the device, sets username and password: the key and certificate are made",
                     request: Body.json(Schema.object([
                         "code": Schema.string, "username": Schema.string, "password": Schema.string, "otp": Schema.string,
                         "keyAlgorithm": Schema.string("Default ecdsa-p256", values: KeyAlgorithm.allCases.map(\.rawValue)),
                     ], required: ["code", "username", "password", "otp"], closed: false)),
                     responses: self.errors([403: "`otp_locked`", 404: "`not_found`: no such invitation", 409: "`conflict`: the username is taken",
                                             410: "`invitation_used` / `invitation_expired`"])
                         .merging([201: Reply.json("The credential", Schema.ref("Activated"))]) { $1 })
    }

    static func addRecovery(to document: inout OpenAPIDocument) {
        document.tag("recovery", "Lost username, password, OTP device or mobile number (README \"Holder lifecycle, web pages and lost credentials\")")
        func route(_ name: String, _ summary: String, _ fields: [String: JSONValue], success: [Int: JSONValue], errors: [Int: String] = [:]) {
            document.add("POST", "/recovery/v1/" + name, tag: "recovery", summary: summary,
                         request: Body.json(Schema.object(fields, required: fields.keys.filter { !["serial", "digits"].contains($0) }.sorted(), closed: false)),
                         responses: self.errors(errors).merging(success) { $1 })
        }
        let accepted = [202: Reply.json("Accepted, whether or not the account exists", Schema.ref("Outcome"))]
        let link = [404: "`not_found`: no such link", 410: "`link_expired`: used or expired"]
        route("username", "Mails the username to the registered address", ["email": Schema.string], success: accepted)
        route("password/request", "Mails a password reset link (1 hour)", ["account": Schema.string("Username or email")], success: accepted)
        route("password/sendOTP", "Sends the SMS code for a reset link (SMS holders)", ["code": Schema.string("The link's code")],
              success: [200: Reply.json("The holder's OTP device", Schema.ref("Challenge"))], errors: link)
        route("password/reset", "Sets a new password with the link's code and an OTP", ["code": Schema.string, "otp": Schema.string, "newPassword": Schema.string],
              success: [200: Reply.json("Changed; every session ended", Schema.ref("Outcome"))], errors: link.merging([403: "`otp_locked`"]) { $1 })
        route("device/begin", "Lost OTP device: password and user code mail a confirmation link",
              ["username": Schema.string, "password": Schema.string, "userCode": Schema.string],
              success: [202: Reply.json("The link is mailed", Schema.ref("Outcome"))], errors: [403: "`pin_locked`"])
        route("device/confirm", "Chooses the new device with the mailed link's code",
              ["code": Schema.string, "device": Schema.string("totp, hotp (serial from the inventory) or sms"), "serial": Schema.string, "digits": Schema.integer],
              success: [201: Reply.json("The new device's challenge and the token that completes it", Schema.ref("DeviceChallenge"))],
              errors: link.merging([409: "`conflict`: the hardware token is taken"]) { $1 })
        route("device/complete", "Proves the new device: the old one stops", ["token": Schema.string, "otp": Schema.string],
              success: [200: Reply.json("Bound", Schema.ref("Outcome"))], errors: link.merging([403: "`otp_locked`"]) { $1 })
        route("mobile/begin", "Change of mobile number: codes to the old and the new number", ["username": Schema.string, "password": Schema.string, "mobile": Schema.string],
              success: [200: Reply.json("Where the codes went", Schema.object(["smsSentTo": Schema.string, "newNumberSentTo": Schema.string], required: ["smsSentTo", "newNumberSentTo"]))],
              errors: [403: "`pin_locked`", 409: "`conflict`: the number belongs to another holder"])
        route("mobile/complete", "Confirms the new number with both codes",
              ["username": Schema.string, "password": Schema.string, "otp": Schema.string("Sent to the old number"), "newNumberOtp": Schema.string("Sent to the new number")],
              success: [200: Reply.json("Changed", Schema.ref("Outcome"))], errors: [403: "`pin_locked` / `otp_locked`", 409: "`conflict`"])
    }

    static func addSelfService(to document: inout OpenAPIDocument) {
        document.tag("selfservice", "The holder's status, renewal, and emergency suspension or revocation")
        let changed = Schema.object([
            "status": Schema.string("suspended or revoked", values: ["suspended", "revoked"]), "credentials": Schema.array(Schema.string("Credential ID")),
        ], required: ["status", "credentials"])
        let login: [String: JSONValue] = ["username": Schema.string, "password": Schema.string]
        document.add("POST", "/selfservice/v1/status", tag: "selfservice", summary: "The holder's state and credentials",
                     request: Body.json(Schema.object(login, required: ["username", "password"], closed: false)),
                     responses: self.errors([403: "`pin_locked`"]).merging([200: Reply.json("State and credentials", Schema.object([
                         "state": Schema.string("Holder state", values: HolderState.allCases.map(\.rawValue)), "description": Schema.string, "username": Schema.string,
                         "credentials": Schema.array(Schema.ref("CredentialStatus")),
                     ], required: ["state", "description", "username", "credentials"]))]) { $1 })
        document.add("POST", "/selfservice/v1/sendOTP", tag: "selfservice", summary: "Sends the SMS code for a renewal or a revocation (SMS holders)",
                     request: Body.json(Schema.object(login.merging(["purpose": Schema.string(values: ["revoke", "renew"])]) { $1 }, required: ["username", "password", "purpose"], closed: false)),
                     responses: self.errors([403: "`pin_locked`"]).merging([200: Reply.json("Sent", Schema.ref("Outcome"))]) { $1 })
        document.add("POST", "/selfservice/v1/renew", tag: "selfservice", summary: "Renews the certificate (new key, new certificate) in its last 90 days",
                     request: Body.json(Schema.object(login.merging(["otp": Schema.string]) { $1 }, required: ["username", "password", "otp"], closed: false)),
                     responses: self.errors([403: "`pin_locked` / `otp_locked`", 409: "`conflict` / `illegal_transition`: not renewable now"])
                         .merging([201: Reply.json("The new credential", Schema.ref("CredentialStatus"))]) { $1 })
        document.add("POST", "/selfservice/v1/suspend", tag: "selfservice", summary: "Suspends every credential with the user code",
                     request: Body.json(Schema.object(["username": Schema.string, "userCode": Schema.string], required: ["username", "userCode"], closed: false)),
                     responses: self.errors([403: "`pin_locked`"]).merging([200: Reply.json("Suspended", changed)]) { $1 })
        document.add("POST", "/selfservice/v1/revoke", tag: "selfservice", summary: "Revokes every credential with the user code, or with password and OTP",
                     request: Body.json(Schema.object([
                         "username": Schema.string, "userCode": Schema.string, "password": Schema.string, "otp": Schema.string,
                         "reason": Schema.string("Default unspecified", values: ["unspecified", "keyCompromise", "affiliationChanged", "cessationOfOperation"]),
                     ], required: ["username"], closed: false)),
                     responses: self.errors([403: "`pin_locked` / `otp_locked`"]).merging([200: Reply.json("Revoked", changed)]) { $1 })
    }

    // MARK: Web pages

    static func addWebPages(to document: inout OpenAPIDocument) {
        document.tag("web", "The holder's pages: server-rendered HTML forms posting `application/x-www-form-urlencoded`. A refused form is its page with the "
            + "error shown, with the status the JSON route would give.")
        let pageErrors: [Int: JSONValue] = [
            400: Reply.html("The page with the error (a missing or wrong field, a wrong password or OTP)"),
            403: Reply.html("The page with the error (password or OTP locked)"),
            404: Reply.html("The page with the error (no such invitation or link)"),
            409: Reply.html("The page with the error (a conflict: username or number taken, not possible in this state)"),
            410: Reply.html("The page with the error (invitation or link used or expired)"),
            413: Reply.error("`payload_too_large`: the form is over 64 KiB"),
            429: Reply.html("Too many requests (`Retry-After`)"),
            503: Reply.html("The page with the error (token or database unavailable)"),
        ]
        func page(_ path: String, _ summary: String, query: [(String, String)] = [], checks: Bool = false) {
            document.add("GET", path, tag: "web", summary: summary, query: query,
                         responses: checks ? pageErrors.filter { [404, 410, 429, 503].contains($0.key) }.merging([200: Reply.html("The page")]) { $1 }
                                           : [200: Reply.html("The page")])
        }
        func form(_ path: String, _ summary: String, _ fields: [String]) {
            document.add("POST", path, tag: "web", summary: summary, request: Body.form(fields), responses: pageErrors.merging([200: Reply.html("The next page")]) { $1 })
        }
        page("/", "Home")
        page("/activate", "The invitation link: choose the OTP device", query: [("code", "The activation code")], checks: true)
        form("/activate/device", "Activation: the chosen device's challenge", ["code", "device", "serial", "seed"])
        form("/activate/complete", "Activation: proof, username and password; the user code is shown once", ["code", "username", "password", "password2", "otp"])
        page("/status", "State and credentials: the form")
        form("/status", "State and credentials", ["username", "password"])
        page("/renew", "Renewal: the form")
        form("/renew", "Renewal (an empty OTP sends an SMS code)", ["username", "password", "otp"])
        page("/recovery", "Lost credentials: the choices")
        page("/recovery/username", "Forgotten username: the form")
        form("/recovery/username", "Forgotten username: mails it", ["email"])
        page("/recovery/password", "Forgotten password: the form, or (with the link's code) the new password form", query: [("code", "The mailed link's code")], checks: true)
        form("/recovery/password/request", "Forgotten password: mails the link", ["account"])
        form("/recovery/password/sms", "Forgotten password: sends the SMS code", ["code"])
        form("/recovery/password", "Forgotten password: sets the new one", ["code", "newPassword", "newPassword2", "otp"])
        page("/recovery/device", "Lost OTP device: the form")
        form("/recovery/device", "Lost OTP device: mails the confirmation link", ["username", "password", "userCode"])
        page("/recovery/device/confirm", "Lost OTP device: the mailed link, choose the new device", query: [("code", "The mailed link's code")], checks: true)
        form("/recovery/device/confirm", "Lost OTP device: the new device's challenge", ["code", "device", "serial"])
        form("/recovery/device/complete", "Lost OTP device: proves the new one", ["token", "otp"])
        page("/recovery/usercode", "Lost user code: revocation form")
        form("/recovery/usercode", "Lost user code: revokes with password and OTP (an empty OTP sends an SMS code)", ["username", "password", "otp"])
        page("/recovery/mobile", "Change of mobile number: the form")
        form("/recovery/mobile/begin", "Change of mobile number: sends the two codes", ["username", "password", "mobile"])
        form("/recovery/mobile", "Change of mobile number: confirms with both codes", ["username", "password", "otp", "newNumberOtp"])
    }

    // MARK: PKI (public and publication listeners)

    static func addPKI(to document: inout OpenAPIDocument) {
        document.tag("pki", "What relying parties fetch without authentication: the CA certificate and chain, the CRL, OCSP")
        document.add("GET", "/ca.cer", tag: "pki", summary: "The CA certificate", responses: [200: Reply.bytes("DER", "application/pkix-cert")])
        document.add("GET", "/ca.p7c", tag: "pki", summary: "The CA certificate and the chain above it (certs-only CMS)", responses: [200: Reply.bytes("DER", "application/pkcs7-mime")])
        document.add("GET", "/crl/ca.crl", tag: "pki", summary: "The current CRL", responses: [
            200: Reply.bytes("DER", "application/pkix-crl"),
            503: Reply.error("The token does not answer (the CRL cannot be signed)"),
        ])
        let ocsp = Reply.bytes("A DER OCSPResponse; a malformed request gets the OCSP status malformedRequest", "application/ocsp-response")
        document.add("POST", "/ocsp", tag: "pki", summary: "OCSP (RFC 6960)", request: Body.bytes("application/ocsp-request", "A DER OCSPRequest"), responses: [200: ocsp])
        document.add("GET", "/ocsp/{request}", tag: "pki", summary: "OCSP by GET (RFC 6960 appendix A, RFC 5019): cacheable",
                     description: "`request` is the DER OCSPRequest in base64 (or base64url), URL-encoded (so `/` is `%2F`).",
                     responses: [200: ocsp, 304: Reply.empty("Not modified (`If-None-Match` named this answer's ETag)")])
    }
}
