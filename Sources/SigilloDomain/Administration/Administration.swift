import Foundation
import PKCS11

/// What only operators do: holders and their enrolment, invitations, mobile numbers, the hardware token inventory,
/// device replacement after an identity check, the expiry jobs on demand and the CRL. Credential status changes
/// (unlock, suspend, reinstate, revoke) are `CredentialLifecycle`'s; the audit log is `AuditTrail`'s.
///
/// Every action is audited with the operator (`actor`, the subject of their client certificate) as its actor,
/// reads included.
public struct Administration: Sendable {
    let store: any HolderStore & CredentialStore & EnrollmentStore
    let enrollment: Enrollment
    let lifecycle: CredentialLifecycle
    let recovery: Recovery
    let crl: any RevocationList
    let audit: AuditLog
    let clock: ServiceClock

    /// Creates a holder (see `Enrollment.createHolder`).
    public func createHolder(givenName: String, surname: String, fiscalCode: String, email: String, mobile: String, actor: String, recognized: Bool = false) async throws -> Holder {
        try await self.enrollment.createHolder(givenName: givenName, surname: surname, fiscalCode: fiscalCode, email: email, mobile: mobile, actor: actor, recognized: recognized)
    }

    /// One holder. - Throws: `notFound`.
    public func holder(id: String, actor: String) async throws -> Holder {
        guard let holder = try await self.store.holder(id: id) else {
            try await self.audit.record(actor, "holder.show", target: id, outcome: "refused", details: "unknown holder")
            throw SigilloError(.notFound, "no holder \(id)")
        }
        try await self.audit.record(actor, "holder.show", target: id, outcome: "ok")
        return holder
    }

    public func holders(actor: String) async throws -> [Holder] {
        let holders = try await self.store.holders()
        try await self.audit.record(actor, "holder.list", target: "*", outcome: "ok", details: "count=\(holders.count)")
        return holders
    }

    /// Issues an activation invitation; the code is returned once and only its digest is stored.
    public func invite(holderID: String, actor: String) async throws -> (code: String, expiresAt: Date) {
        try await self.enrollment.invite(holderID: holderID, actor: actor)
    }

    /// Changes a holder's mobile number (where SMS codes go). A number belongs to one holder only.
    public func changeMobile(holderID: String, mobile: String, actor: String) async throws -> Holder {
        guard let holder = try await self.store.holder(id: holderID) else { throw SigilloError(.notFound, "no holder \(holderID)") }
        let normalized = try Enrollment.normalizedMobile(mobile)
        do {
            try await self.store.setHolderMobile(id: holderID, mobile: normalized)
        } catch let error as SigilloError {
            try await self.audit.record(actor, "holder.mobile.change", target: holderID, outcome: "refused", details: error.message)
            throw error
        }
        try await self.audit.record(actor, "holder.mobile.change", target: holderID, outcome: "ok",
                                     details: "…\(holder.mobile.suffix(3)) → …\(normalized.suffix(3))")
        return try await self.holder(id: holderID, actor: actor)
    }

    public func credentials(holderID: String, actor: String) async throws -> [Credential] {
        guard try await self.store.holder(id: holderID) != nil else { throw SigilloError(.notFound, "no holder \(holderID)") }
        let credentials = try await self.store.credentials(holderID: holderID)
        try await self.audit.record(actor, "credential.list", target: holderID, outcome: "ok", details: "count=\(credentials.count)")
        return credentials
    }

    /// Imports hardware display tokens from a manufacturer's seed file, one per line: `serial,seed-hex[,digits[,algorithm]]`
    /// (`#` comments and blank lines skipped). All or nothing: one bad line refuses the file, naming the line.
    public func importHardwareTokens(csv: String, actor: String) async throws -> (added: Int, known: Int) {
        let tokens = try HardwareTokenFile.parse(csv)
        let added = try await self.store.importHardwareTokens(tokens, at: self.clock.now())
        try await self.audit.record(actor, "hardware_tokens.import", target: "inventory", outcome: "ok", details: "added=\(added) known=\(tokens.count - added)")
        return (added, tokens.count - added)
    }

    /// One enrolment step (payment registered, awaiting processing, awaiting documents, recognized).
    public func advance(holderID: String, to state: HolderState, actor: String) async throws -> Holder {
        try await self.enrollment.advanceEnrolment(holderID: holderID, to: state, actor: actor)
    }

    /// Replaces a holder's OTP device after an identity check; the holder proves the new device with a code
    /// (`completeRebind`), and only then does the old one stop working.
    public func beginRebind(holderID: String, device: DeviceChoice, actor: String) async throws -> DeviceRebind {
        try await self.recovery.operatorBeginDeviceRebind(holderID: holderID, device: device, actor: actor)
    }

    /// Runs the expiry jobs now (also run by the server's scheduler): states, reminders, expiry notices.
    public func runLifecycleJobs(actor: String) async throws -> LifecycleReport {
        try await self.lifecycle.runLifecycleJobs(actor: actor)
    }

    /// The current CRL (DER), rebuilt first if anything changed or it is getting old.
    public func crl(actor: String) async throws -> (der: [UInt8], number: Int64) {
        let crl = try await self.crl.currentList()
        try await self.audit.record(actor, "crl.fetch", target: "crl", outcome: "ok", details: "number=\(crl.number)")
        return crl
    }
}
