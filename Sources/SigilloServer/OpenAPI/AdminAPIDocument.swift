import PKCS11
import SigilloDomain

extension OpenAPI {
    /// The admin listener: mutual TLS with an operator certificate for every route (this document included).
    public static func adminListener() -> OpenAPIDocument {
        var document = OpenAPIDocument(
            title: "Sigillo admin API",
            summary: "Operators manage holders, credentials, hardware tokens, the CRL and the audit log, and scrape the metrics. Served by the admin "
                + "listener, which accepts only TLS clients presenting a certificate of the admin CA; its subject is the operator recorded in the audit log.")
        self.addCommonSchemas(to: &document)
        self.addDocument(to: &document)
        let operatorOnly = OpenAPIDocument.Security.operatorCertificate
        func errors(_ statuses: [Int: String] = [:]) -> [Int: JSONValue] {
            self.errors(statuses.merging([403: "`operator_required`: no client certificate of the admin CA"]) { $1 }, anonymous: false)
        }
        func add(_ method: String, _ path: String, _ tag: String, _ summary: String, request: JSONValue? = nil, _ success: [Int: JSONValue],
                 errors statuses: [Int: String] = [:]) {
            document.add(method, "/admin/v1/" + path, tag: tag, summary: summary, security: operatorOnly, request: request,
                         responses: errors(statuses).merging(success) { $1 })
        }
        document.tag("metrics", "Prometheus")
        document.add("GET", "/metrics", tag: "metrics", summary: "Prometheus text exposition format 0.0.4 (README \"Metrics\")", security: operatorOnly,
                     responses: [200: Reply.bytes("The metrics", "text/plain")])

        document.tag("holders", "Holders and their enrolment")
        document.schema("Holder", Schema.object([
            "id": Schema.string, "username": Schema.string("Once activated"), "givenName": Schema.string, "surname": Schema.string, "fiscalCode": Schema.string,
            "email": Schema.string, "mobile": Schema.string, "state": Schema.string(values: HolderState.allCases.map(\.rawValue)),
            "createdAt": Schema.string("ISO 8601", format: "date-time"),
        ], required: ["id", "givenName", "surname", "fiscalCode", "email", "mobile", "state", "createdAt"]))
        let holder = Reply.json("The holder", Schema.ref("Holder"))
        let unknown = [404: "`not_found`: no such holder"]
        let conflict = [404: "`not_found`: no such holder", 409: "`illegal_transition` / `conflict`: not in this state"]
        add("GET", "whoami", "holders", "The operator this certificate is", [200: Reply.json("The certificate's subject", Schema.object(["operator": Schema.string], required: ["operator"]))])
        add("POST", "holders", "holders", "Creates a holder (an order)", request: Body.json(Schema.object([
            "givenName": Schema.string, "surname": Schema.string, "fiscalCode": Schema.string, "email": Schema.string, "mobile": Schema.string("E.164"),
            "recognized": ["type": "boolean", "description": "Skip the enrolment steps (identified at the desk)"],
        ], required: ["givenName", "surname", "fiscalCode", "email", "mobile"], closed: false)),
            [201: holder], errors: [409: "`conflict`: fiscal code, email or mobile belong to an open holder"])
        add("GET", "holders", "holders", "Every holder", [200: Reply.json("The holders", Schema.object(["holders": Schema.array(Schema.ref("Holder"))], required: ["holders"]))])
        add("GET", "holders/{id}", "holders", "A holder", [200: holder], errors: unknown)
        add("PUT", "holders/{id}/mobile", "holders", "Changes the mobile number",
            request: Body.json(Schema.object(["mobile": Schema.string("E.164")], required: ["mobile"], closed: false)), [200: holder],
            errors: [404: "`not_found`", 409: "`conflict`: the number belongs to another holder"])
        add("POST", "holders/{id}/invite", "holders", "Invites the holder: the activation code (shown once) and its expiry; mails the link", [201: Reply.json("The invitation", Schema.object([
            "holderID": Schema.string, "activationCode": Schema.string, "expiresAt": Schema.string("ISO 8601", format: "date-time"),
        ], required: ["holderID", "activationCode", "expiresAt"]))], errors: conflict)
        add("POST", "holders/{id}/state", "holders", "Advances the enrolment",
            request: Body.json(Schema.object(["state": Schema.string(values: ["payment_registered", "awaiting_processing", "awaiting_documents", "recognized"])], required: ["state"], closed: false)),
            [200: holder], errors: conflict)
        let reason = Body.json(Schema.object(["reason": Schema.string("RFC 5280 reason", values: RevocationReason.allCases.map(\.rawValue))], required: ["reason"], closed: false))
        add("POST", "holders/{id}/revoke", "holders", "Closes a holder for good (every credential revoked)", request: reason, [200: holder], errors: conflict)
        add("POST", "holders/{id}/rebind", "holders", "Lost device, after an identity check: a new device's challenge and the token that binds it",
            request: Body.json(Schema.object(["device": Schema.string("totp, hotp or sms"), "serial": Schema.string, "seed": Schema.string("Hex or base32")], required: ["device"], closed: false)),
            [201: Reply.json("The challenge", Schema.ref("DeviceChallenge"))], errors: conflict)
        add("POST", "rebind/complete", "holders", "Binds the new device with a code read from it",
            request: Body.json(Schema.object(["token": Schema.string, "otp": Schema.string], required: ["token", "otp"], closed: false)),
            [200: Reply.json("Bound", Schema.object(["status": Schema.string(values: ["bound"])], required: ["status"]))],
            errors: [404: "`not_found`: no such binding", 410: "`link_expired`", 403: "`otp_locked` / `operator_required`"])
        add("POST", "hardware-tokens", "holders", "Imports hardware OTP tokens",
            request: Body.bytes("text/csv", "`serial,seed-hex[,digits[,algorithm]]` per line"),
            [200: Reply.json("What was imported", Schema.object(["added": Schema.integer, "alreadyKnown": Schema.integer], required: ["added", "alreadyKnown"]))])
        add("POST", "lifecycle/run", "holders", "Runs the expiry jobs now", [200: Reply.json("What they did", Schema.object([
            "remindersSent": Schema.integer, "expiredNotices": Schema.integer, "stateChanges": Schema.integer,
        ], required: ["remindersSent", "expiredNotices", "stateChanges"]))])

        document.tag("credentials", "Credentials: keys and certificates")
        document.schema("Credential", Schema.object([
            "id": Schema.string, "holderID": Schema.string, "status": Schema.string(values: ["active", "suspended", "revoked"]),
            "keyAlgorithm": Schema.string(values: KeyAlgorithm.allCases.map(\.rawValue)), "serialNumber": Schema.string, "subject": Schema.string,
            "notBefore": Schema.string(format: "date-time"), "notAfter": Schema.string(format: "date-time"), "multisign": Schema.integer,
            "passwordFailures": Schema.integer, "otpFailures": Schema.integer, "locked": Schema.boolean,
            "revocationReason": Schema.string(values: RevocationReason.allCases.map(\.rawValue)), "revokedAt": Schema.string(format: "date-time"),
        ], required: ["id", "holderID", "status", "keyAlgorithm", "serialNumber", "notBefore", "notAfter", "multisign", "passwordFailures", "otpFailures", "locked"]))
        let credential = Reply.json("The credential", Schema.ref("Credential"))
        let credentialConflict = [404: "`not_found`: no such credential", 409: "`illegal_transition`: not in this state"]
        add("GET", "holders/{id}/credentials", "credentials", "A holder's credentials",
            [200: Reply.json("The credentials", Schema.object(["credentials": Schema.array(Schema.ref("Credential"))], required: ["credentials"]))], errors: unknown)
        add("POST", "credentials/{id}/unlock", "credentials", "Resets the password and OTP failure counters", [200: credential], errors: credentialConflict)
        add("POST", "credentials/{id}/suspend", "credentials", "Suspends (no authorize or signHash until reinstated)", [200: credential], errors: credentialConflict)
        add("POST", "credentials/{id}/reinstate", "credentials", "Reinstates a suspended credential", [200: credential], errors: credentialConflict)
        add("POST", "credentials/{id}/revoke", "credentials", "Revokes (irreversible: the key is destroyed)", request: reason, [200: credential], errors: credentialConflict)
        add("POST", "keys/migrate", "credentials", "Token-object holder keys to wrapped keys", [200: Reply.json("What was migrated", Schema.object([
            "migrated": Schema.array(Schema.object(["old": Schema.string, "new": Schema.string], required: ["old", "new"])),
            "skipped": Schema.array(Schema.object(["credentialID": Schema.string, "reason": Schema.string], required: ["credentialID", "reason"])),
        ], required: ["migrated", "skipped"]))])
        add("GET", "crl", "credentials", "The current CRL, rebuilt first if anything changed", [200: Reply.bytes("DER", "application/pkix-crl")])

        document.tag("audit", "The audit log: hash chain, checkpoints signed in the token, anchor")
        document.schema("AuditRecord", Schema.object([
            "seq": Schema.integer, "time": Schema.string(format: "date-time"), "actor": Schema.string, "action": Schema.string, "target": Schema.string,
            "outcome": Schema.string, "details": Schema.string, "prevHash": Schema.string, "hash": Schema.string,
        ], required: ["seq", "time", "actor", "action", "target", "outcome", "details", "prevHash", "hash"]))
        let anchor = Schema.object(["seq": Schema.integer, "hash": Schema.string], required: ["seq", "hash"])
        add("GET", "audit/verify", "audit", "Checks the chain, the checkpoints and the token's anchor", [200: Reply.json("The findings", Schema.object([
            "intact": Schema.boolean, "records": Schema.integer, "highestSequence": Schema.integer, "firstBrokenSequence": Schema.integer, "problem": Schema.string,
            "checkpoints": Schema.integer, "anchoredThrough": Schema.integer, "unanchored": Schema.integer,
        ], required: ["intact", "records", "highestSequence", "checkpoints", "unanchored"]))])
        add("POST", "audit/checkpoint", "audit", "Signs a checkpoint over the log's last record now", [200: Reply.json("The checkpoint's record", Schema.ref("AuditRecord"))],
            errors: [404: "`not_found`: the audit log is empty"])
        add("POST", "audit/anchor/reset", "audit", "Moves the token's anchor to the log's current end (after a restore)", [200: Reply.json("The anchors", Schema.object([
            "previous": anchor, "anchor": anchor,
        ]))])
        add("GET", "audit/export", "audit", "The whole log", [200: Reply.bytes("One JSON record (as AuditRecord) per line", "application/x-ndjson")])

        document.tag("backup", "Online backup of the database (README \"Backups\")")
        var backup = Reply.bytes("A consistent copy of the SQLite database", "application/vnd.sqlite3").members
        backup["headers"] = ["Sigillo-Backup-Manifest": [
            "description": "The manifest, base64 JSON: time, operator, versions, size and SHA-256 of the copy, the token and its keys",
            "required": true, "schema": Schema.string,
        ]]
        add("POST", "backup", "backup", "Backs up the database while the server keeps serving (`sigillo admin backup DIR`)", [200: .object(backup)],
            errors: [409: "`use_pg_dump`: the database is PostgreSQL (back it up with pg_dump)"])
        self.addOAuth2Clients(to: &document, errors: errors)
        return document
    }

    /// The plain-HTTP publication listener: the relying parties' files, OCSP, and `POST /tsa` when a TSA is configured.
    public static func publicationListener(timeStamps: Bool) -> OpenAPIDocument {
        var document = OpenAPIDocument(
            title: "Sigillo publication",
            summary: "Plain HTTP for relying parties, at the URLs written in every certificate the CA issues: CA certificate and chain, CRL, OCSP"
                + (timeStamps ? ", and the RFC 3161 time-stamping authority." : "."))
        self.addDocument(to: &document)
        self.addPKI(to: &document)
        if timeStamps {
            document.add("POST", "/tsa", tag: "pki", summary: "RFC 3161 time-stamping over HTTP",
                         request: Body.bytes("application/timestamp-query", "A DER TimeStampReq"), responses: [
                             200: Reply.bytes("A DER TimeStampResp: a token, or a rejection with its PKIFailureInfo (a malformed query included)", "application/timestamp-reply"),
                             503: Reply.bytes("The TSA's signing budget is spent: a rejection, with `Retry-After`", "application/timestamp-reply"),
                         ])
        }
        return document
    }
}
