import Foundation
import PKCS11

/// What operators do: holders, invitations, unlocking, suspension, reinstatement, revocation and the audit log.
///
/// Every action is audited with the operator (`actor`, the subject of their client certificate) as its actor.
public final class AdminService: Sendable {
    public let service: SigningService
    var store: any Store { self.service.store }

    public init(service: SigningService) {
        self.service = service
    }

    // MARK: Holders

    /// Creates a holder (see `SigningService.createHolder`).
    public func createHolder(givenName: String, surname: String, fiscalCode: String, email: String, mobile: String, actor: String, recognized: Bool = false) async throws -> Holder {
        try await self.service.createHolder(givenName: givenName, surname: surname, fiscalCode: fiscalCode, email: email, mobile: mobile, actor: actor, recognized: recognized)
    }

    /// One holder. - Throws: `notFound`.
    public func holder(id: String, actor: String) async throws -> Holder {
        guard let holder = try await self.store.holder(id: id) else {
            try await self.service.audit(actor, "holder.show", target: id, outcome: "refused", details: "unknown holder")
            throw SigilloError(.notFound, "no holder \(id)")
        }
        try await self.service.audit(actor, "holder.show", target: id, outcome: "ok")
        return holder
    }

    public func holders(actor: String) async throws -> [Holder] {
        let holders = try await self.store.holders()
        try await self.service.audit(actor, "holder.list", target: "*", outcome: "ok", details: "count=\(holders.count)")
        return holders
    }

    /// Issues an activation invitation; the code is returned once and only its digest is stored.
    public func invite(holderID: String, actor: String) async throws -> (code: String, expiresAt: Date) {
        do {
            return try await self.service.invite(holderID: holderID, actor: actor)
        } catch let error as SigilloError {
            try await self.service.audit(actor, "holder.invite", target: holderID, outcome: "refused", details: error.message)
            throw error
        }
    }

    /// Changes a holder's mobile number (where SMS codes go). A number belongs to one holder only.
    public func changeMobile(holderID: String, mobile: String, actor: String) async throws -> Holder {
        guard let holder = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "no holder \(holderID)") }
        let normalized = try SigningService.normalizedMobile(mobile)
        do {
            try await self.store.setHolderMobile(id: holderID, mobile: normalized)
        } catch let error as SigilloError {
            try await self.service.audit(actor, "holder.mobile.change", target: holderID, outcome: "refused", details: error.message)
            throw error
        }
        try await self.service.audit(actor, "holder.mobile.change", target: holderID, outcome: "ok",
                                     details: "…\(holder.mobile.suffix(3)) → …\(normalized.suffix(3))")
        return try await self.holder(id: holderID, actor: actor)
    }

    // MARK: Credentials

    public func credentials(holderID: String, actor: String) async throws -> [Credential] {
        guard try await self.store.holder(id: holderID) != nil else { throw SigilloError(.notFound, "no holder \(holderID)") }
        let credentials = try await self.store.credentials(holderID: holderID)
        try await self.service.audit(actor, "credential.list", target: holderID, outcome: "ok", details: "count=\(credentials.count)")
        return credentials
    }

    /// Clears the password and OTP failure counters of a credential.
    public func unlock(credentialID: String, actor: String) async throws -> Credential {
        let credential = try await self.existing(credentialID)
        try await self.store.resetFailures(credentialID: credentialID)
        try await self.service.audit(actor, "credential.unlock", target: credentialID, outcome: "ok",
                                     details: "password_failures=\(credential.passwordFailures) otp_failures=\(credential.otpFailures)")
        return try await self.existing(credentialID)
    }

    /// Suspends an active credential (certificateHold): every authorize and signHash fails until reinstated,
    /// and SADs already issued are deleted.
    public func suspend(credentialID: String, actor: String) async throws -> Credential {
        let credential = try await self.existing(credentialID)
        guard try await self.store.changeCredentialStatus(id: credentialID, from: .active, to: .suspended, at: self.service.clock.now()) else {
            try await self.service.audit(actor, "credential.suspend", target: credentialID, outcome: "refused", details: "status=\(credential.status.rawValue)")
            throw SigilloError(.conflict, "credential \(credentialID) is \(credential.status.rawValue); only an active credential can be suspended")
        }
        await self.service.crl.markDirty()
        try await self.service.audit(actor, "credential.suspend", target: credentialID, outcome: "ok")
        try await self.service.syncHolderState(holderID: credential.holderID, actor: actor)
        return try await self.existing(credentialID)
    }

    /// Makes a suspended credential usable again. A revoked credential stays revoked.
    public func reinstate(credentialID: String, actor: String) async throws -> Credential {
        let credential = try await self.existing(credentialID)
        guard try await self.store.changeCredentialStatus(id: credentialID, from: .suspended, to: .active, at: self.service.clock.now()) else {
            try await self.service.audit(actor, "credential.reinstate", target: credentialID, outcome: "refused", details: "status=\(credential.status.rawValue)")
            let why = credential.status == .revoked ? "revocation is irreversible" : "only a suspended credential can be reinstated"
            throw SigilloError(.conflict, "credential \(credentialID) is \(credential.status.rawValue): \(why)")
        }
        await self.service.crl.markDirty()
        try await self.service.audit(actor, "credential.reinstate", target: credentialID, outcome: "ok")
        try await self.service.syncHolderState(holderID: credential.holderID, actor: actor)
        return try await self.existing(credentialID)
    }

    /// Revokes a credential for good: status revoked with reason and time, SADs deleted, and the private and
    /// public keys destroyed in the token.
    ///
    /// Revoking an already revoked credential only retries the key destruction (in case the token failed the
    /// first time) and otherwise refuses with `conflict`.
    public func revoke(credentialID: String, reason: RevocationReason, actor: String) async throws -> Credential {
        let credential = try await self.service.revokeCredential(credentialID, reason: reason, actor: actor)
        try await self.service.syncHolderState(holderID: credential.holderID, actor: actor)
        if let holder = try await self.store.holder(id: credential.holderID) {
            try await self.service.mail(to: holder, MailTemplates.revocationNotice(name: holder.fullName, serialNumber: credential.serialNumber, reason: reason, revokedAt: credential.revokedAt ?? self.service.clock.now()))
        }
        return credential
    }

    // MARK: Holder lifecycle

    /// Imports hardware display tokens from a manufacturer's seed file, one per line: `serial,seed-hex[,digits[,algorithm]]`
    /// (`#` comments and blank lines skipped). All or nothing: one bad line refuses the file, naming the line.
    public func importHardwareTokens(csv: String, actor: String) async throws -> (added: Int, known: Int) {
        var tokens: [HardwareToken] = []
        for (number, raw) in csv.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard (2...4).contains(fields.count), !fields[0].isEmpty, fields[0].count <= 64,
                  let seed = Hex.bytes(fields[1]), seed.count >= 16,
                  let digits = fields.count > 2 ? Int(fields[2]) : 6, HOTP.digitRange.contains(digits),
                  let algorithm = fields.count > 3 ? OTPAlgorithm(rawValue: fields[3].uppercased()) : .sha1 else {
                throw SigilloError(.invalidRequest, "line \(number + 1): expected serial,seed-hex (16+ bytes)[,digits 6-8[,SHA1|SHA256|SHA512]]")
            }
            tokens.append(HardwareToken(serial: fields[0], seed: seed, digits: digits, algorithm: algorithm))
        }
        guard !tokens.isEmpty else { throw SigilloError(.invalidRequest, "the file lists no tokens") }
        let added = try await self.store.importHardwareTokens(tokens, at: self.service.clock.now())
        try await self.service.audit(actor, "hardware_tokens.import", target: "inventory", outcome: "ok", details: "added=\(added) known=\(tokens.count - added)")
        return (added, tokens.count - added)
    }

    /// One enrolment step (payment registered, awaiting processing, awaiting documents, recognized).
    public func advance(holderID: String, to state: HolderState, actor: String) async throws -> Holder {
        try await self.service.advanceEnrolment(holderID: holderID, to: state, actor: actor)
    }

    /// Cancels an order or closes a holder: every credential revoked (keys destroyed), holder revoked.
    public func revokeHolder(holderID: String, reason: RevocationReason, actor: String) async throws -> Holder {
        try await self.service.revokeHolder(holderID: holderID, reason: reason, actor: actor)
    }

    /// Replaces a holder's OTP device after an identity check; the holder proves the new device with a code
    /// (`completeRebind`), and only then does the old one stop working.
    public func beginRebind(holderID: String, device: SigningService.DeviceChoice, actor: String) async throws -> SigningService.DeviceRebind {
        try await self.service.operatorBeginDeviceRebind(holderID: holderID, device: device, actor: actor)
    }

    /// Runs the expiry jobs now (also run by the server's scheduler): states, reminders, expiry notices.
    public func runLifecycleJobs(actor: String) async throws -> LifecycleReport {
        try await self.service.runLifecycleJobs(actor: actor)
    }

    // MARK: CRL

    /// The current CRL (DER), rebuilt first if anything changed or it is getting old.
    public func crl(actor: String) async throws -> (der: [UInt8], number: Int64) {
        let crl = try await self.service.crl.currentList()
        try await self.service.audit(actor, "crl.fetch", target: "crl", outcome: "ok", details: "number=\(crl.number)")
        return crl
    }

    // MARK: Audit

    /// The outcome of checking the audit log.
    public struct AuditVerification: Sendable, Equatable, Codable {
        public var intact: Bool
        /// Rows checked.
        public var records: Int
        /// The highest sequence number ever handed out.
        public var highestSequence: Int64
        /// The first row found wrong (edited, out of place, or after a gap), if any.
        public var firstBrokenSequence: Int64?
        public var problem: String?
    }

    /// Checks the hash chain, that sequence numbers run 1, 2, 3… without gaps, and that the last row is the
    /// last one ever written (SQLite's `sqlite_sequence`), so edited, deleted (anywhere) and reordered rows show.
    public func verifyAudit(actor: String) async throws -> AuditVerification {
        let records = try await self.store.auditRecords()
        let highWater = try await self.store.auditSequenceHighWater() ?? 0
        var result = AuditVerification(intact: true, records: records.count, highestSequence: highWater)
        if let broken = AuditChain.firstBrokenRecord(records) {
            result.intact = false
            result.firstBrokenSequence = broken.sequence
            result.problem = "record \(broken.sequence) does not match the hash chain (edited, deleted before it, or reordered)"
        } else if let gap = zip(records, 1...).first(where: { $0.0.sequence != Int64($0.1) }) {
            result.intact = false
            result.firstBrokenSequence = gap.0.sequence
            result.problem = "records are missing before \(gap.0.sequence)"
        } else if Int64(records.count) < highWater {
            result.intact = false
            result.problem = "the last \(highWater - Int64(records.count)) record(s) were deleted (last present \(records.count), highest written \(highWater))"
        }
        try await self.service.audit(actor, "audit.verify", target: "audit_events", outcome: result.intact ? "ok" : "broken",
                                     details: result.problem ?? "records=\(records.count)")
        return result
    }

    /// Every audit record, in order.
    public func exportAudit(actor: String) async throws -> [AuditRecord] {
        let records = try await self.store.auditRecords()
        try await self.service.audit(actor, "audit.export", target: "audit_events", outcome: "ok", details: "records=\(records.count)")
        return records
    }

    private func existing(_ credentialID: String) async throws -> Credential {
        guard let credential = try await self.store.credential(id: credentialID) else { throw SigilloError(.notFound, "no credential \(credentialID)") }
        return credential
    }
}
