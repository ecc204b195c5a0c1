import CSCProtocol
import Foundation
import Hummingbird
import NIOCore
import SigilloDomain
import X509

/// The admin API (`/admin/v1/...`), JSON in and out. Every handler acts as the operator whose client
/// certificate opened the connection.
struct AdminController: Sendable {
    let admin: Administration
    let lifecycle: CredentialLifecycle
    let recovery: Recovery
    let auditTrail: AuditTrail
    let oauth: OAuthServer

    func addRoutes(to router: Router<AdminContext>) {
        let group = router.group("admin/v1")
        self.addClientRoutes(to: group)
        group.get("whoami") { _, context in try Self.json(AdminAPI.WhoAmI(operator: try context.requireOperator())) }
        group.post("holders") { request, context in try await self.createHolder(request, context) }
        group.get("holders") { _, context in
            let holders = try await self.admin.holders(actor: try context.requireOperator())
            return try Self.json(AdminAPI.HolderList(holders: holders.map(AdminAPI.HolderView.init)))
        }
        group.get("holders/:id") { _, context in
            let holder = try await self.admin.holder(id: try context.parameters.require("id"), actor: try context.requireOperator())
            return try Self.json(AdminAPI.HolderView(holder))
        }
        group.put("holders/:id/mobile") { request, context in
            let body = try await Self.decode(AdminAPI.ChangeMobile.self, request, context)
            let holder = try await self.admin.changeMobile(holderID: try context.parameters.require("id"), mobile: body.mobile, actor: try context.requireOperator())
            return try Self.json(AdminAPI.HolderView(holder))
        }
        group.post("holders/:id/invite") { _, context in
            let id = try context.parameters.require("id")
            let invitation = try await self.admin.invite(holderID: id, actor: try context.requireOperator())
            return try Self.json(AdminAPI.Invitation(holderID: id, activationCode: invitation.code, expiresAt: AdminAPI.time(invitation.expiresAt)), status: .created)
        }
        group.post("holders/:id/state") { request, context in
            let body = try await Self.decode(AdminAPI.Transition.self, request, context)
            guard let state = HolderState(rawValue: body.state) else {
                throw APIError(status: .badRequest, code: "invalid_request",
                               description: "unknown state '\(body.state)'; enrolment steps: payment_registered, awaiting_processing, awaiting_documents, recognized")
            }
            let holder = try await self.admin.advance(holderID: try context.parameters.require("id"), to: state, actor: try context.requireOperator())
            return try Self.json(AdminAPI.HolderView(holder))
        }
        group.post("holders/:id/revoke") { request, context in
            let body = try await Self.decode(AdminAPI.Revoke.self, request, context)
            let holder = try await self.lifecycle.revokeHolder(holderID: try context.parameters.require("id"), reason: try Self.reason(body.reason), actor: try context.requireOperator())
            return try Self.json(AdminAPI.HolderView(holder))
        }
        group.post("holders/:id/rebind") { request, context in
            let body = try await Self.decode(AdminAPI.Rebind.self, request, context)
            let device = try ActivationController.deviceChoice(kind: body.device, serial: body.serial, seedHex: body.seed)
            let started = try await self.admin.beginRebind(holderID: try context.parameters.require("id"), device: device, actor: try context.requireOperator())
            return try Self.json(AdminAPI.RebindStarted(
                token: started.token, device: started.challenge.kind.rawValue, secret: started.challenge.secret.map { Base32.encode($0, padding: false) },
                otpauthURI: started.challenge.otpauthURI, smsSentTo: started.challenge.smsSentTo), status: .created)
        }
        group.post("rebind/complete") { request, context in
            let body = try await Self.decode(AdminAPI.RebindComplete.self, request, context)
            try await self.recovery.operatorCompleteDeviceRebind(token: body.token, otp: body.otp, actor: try context.requireOperator())
            return try Self.json(["status": "bound"])
        }
        group.post("hardware-tokens") { request, context in
            let buffer = try await request.body.collect(upTo: context.maxUploadSize)
            let imported = try await self.admin.importHardwareTokens(csv: String(buffer: buffer), actor: try context.requireOperator())
            return try Self.json(["added": imported.added, "alreadyKnown": imported.known])
        }
        group.post("lifecycle/run") { _, context in
            let report = try await self.admin.runLifecycleJobs(actor: try context.requireOperator())
            return try Self.json(AdminAPI.LifecycleReport(remindersSent: report.remindersSent, expiredNotices: report.expiredNotices, stateChanges: report.stateChanges))
        }
        group.post("keys/migrate") { _, context in
            let report = try await self.lifecycle.migrateKeys(actor: try context.requireOperator())
            return try Self.json(AdminAPI.KeyMigration(
                migrated: report.migrated.map { AdminAPI.KeyMigration.Migrated(old: $0.old, new: $0.new) },
                skipped: report.skipped.map { AdminAPI.KeyMigration.Skipped(credentialID: $0.id, reason: $0.reason) }))
        }
        group.get("holders/:id/credentials") { _, context in
            let credentials = try await self.admin.credentials(holderID: try context.parameters.require("id"), actor: try context.requireOperator())
            var views: [AdminAPI.CredentialView] = []
            for credential in credentials { views.append(try await self.view(credential)) }
            return try Self.json(AdminAPI.CredentialList(credentials: views))
        }
        group.post("credentials/:id/unlock") { _, context in
            try Self.json(try await self.view(try await self.lifecycle.unlock(credentialID: try context.parameters.require("id"), actor: try context.requireOperator())))
        }
        group.post("credentials/:id/suspend") { _, context in
            try Self.json(try await self.view(try await self.lifecycle.suspend(credentialID: try context.parameters.require("id"), actor: try context.requireOperator())))
        }
        group.post("credentials/:id/reinstate") { _, context in
            try Self.json(try await self.view(try await self.lifecycle.reinstate(credentialID: try context.parameters.require("id"), actor: try context.requireOperator())))
        }
        group.post("credentials/:id/revoke") { request, context in
            let body = try await Self.decode(AdminAPI.Revoke.self, request, context)
            let credential = try await self.lifecycle.revoke(credentialID: try context.parameters.require("id"), reason: try Self.reason(body.reason), actor: try context.requireOperator())
            return try Self.json(try await self.view(credential))
        }
        group.get("crl") { _, context in
            let crl = try await self.admin.crl(actor: try context.requireOperator())
            var headers = HTTPFields()
            headers[.contentType] = "application/pkix-crl"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: crl.der)))
        }
        group.get("audit/verify") { _, context in
            try Self.json(try await self.auditTrail.verify(actor: try context.requireOperator()))
        }
        group.post("audit/checkpoint") { _, context in
            guard let record = try await self.auditTrail.checkpoint(actor: try context.requireOperator()) else {
                throw SigilloError(.notFound, "the audit log is empty")
            }
            return try Self.json(AdminAPI.AuditLine(record))
        }
        group.post("audit/anchor/reset") { _, context in
            let (old, new) = try await self.auditTrail.resetAnchor(actor: try context.requireOperator())
            return try Self.json(AdminAPI.AuditAnchorReset(
                previous: old.map { AdminAPI.AuditAnchorView(seq: $0.sequence, hash: $0.hash) }, anchor: new.map { AdminAPI.AuditAnchorView(seq: $0.sequence, hash: $0.hash) }))
        }
        group.get("audit/export") { _, context in
            let records = try await self.auditTrail.export(actor: try context.requireOperator())
            let encoder = JSONResponse.encoder()
            var data = Data()
            for record in records {
                data.append(try encoder.encode(AdminAPI.AuditLine(record)))
                data.append(0x0A)
            }
            var headers = HTTPFields()
            headers[.contentType] = "application/x-ndjson"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    private func createHolder(_ request: Request, _ context: AdminContext) async throws -> Response {
        let body = try await Self.decode(AdminAPI.CreateHolder.self, request, context)
        let holder = try await self.admin.createHolder(
            givenName: body.givenName, surname: body.surname, fiscalCode: body.fiscalCode, email: body.email, mobile: body.mobile, actor: try context.requireOperator(),
            recognized: body.recognized ?? false)
        return try Self.json(AdminAPI.HolderView(holder), status: .created)
    }

    // MARK: Helpers

    static func reason(_ name: String) throws -> RevocationReason {
        guard let reason = RevocationReason(rawValue: name) else {
            throw APIError(status: .badRequest, code: "invalid_request",
                           description: "unknown reason '\(name)'; use one of \(RevocationReason.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return reason
    }

    /// A credential as operators see it, with its holder's lock counters.
    func view(_ credential: Credential) async throws -> AdminAPI.CredentialView {
        AdminAPI.CredentialView(credential, failures: try await self.lifecycle.secretFailures(holderID: credential.holderID),
                                subject: (try? Certificate(derEncoded: credential.certificateDER))?.subject.description)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: AdminContext) async throws -> T {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        do {
            return try JSONDecoder().decode(type, from: Data(buffer: buffer))
        } catch {
            throw APIError(status: .badRequest, code: "invalid_request", description: "the request body is not valid JSON for this route: \(error)")
        }
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        try JSONResponse.make(value, status: status)
    }
}
