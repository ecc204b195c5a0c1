import CSCProtocol
import Foundation
import SigilloDomain

extension AdminAPI.HolderView {
    /// A holder as operators see it (never the password hash).
    init(_ holder: Holder) {
        self.init(
            id: holder.id, username: holder.username, givenName: holder.givenName, surname: holder.surname, fiscalCode: holder.fiscalCode,
            email: holder.email, mobile: holder.mobile, state: holder.state.rawValue, createdAt: AdminAPI.time(holder.createdAt))
    }
}

extension AdminAPI.CredentialView {
    init(_ credential: Credential, failures: SecretFailures, subject: String?) {
        self.init(
            id: credential.id, holderID: credential.holderID, status: credential.status.rawValue, keyAlgorithm: credential.keyAlgorithm.rawValue,
            serialNumber: credential.serialNumber, subject: subject, notBefore: AdminAPI.time(credential.notBefore), notAfter: AdminAPI.time(credential.notAfter),
            multisign: credential.multisign, passwordFailures: failures.password, otpFailures: failures.otp,
            locked: failures.pinLocked || failures.otpLocked, revocationReason: credential.revocationReason?.rawValue,
            revokedAt: credential.revokedAt.map(AdminAPI.time))
    }
}

extension AdminAPI.AuditLine {
    init(_ record: AuditRecord) {
        self.init(
            seq: record.sequence, time: AdminAPI.time(record.time), actor: record.event.actor, action: record.event.action, target: record.event.target,
            outcome: record.event.outcome, details: record.event.details, prevHash: record.previousHash, hash: record.hash)
    }
}

extension AdminAPI {
    /// ISO 8601, as every admin answer writes times.
    static func time(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
