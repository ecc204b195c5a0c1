import Foundation
import GRDB
import SigilloDomain

/// Credentials: status, failure counters, expiry and renewal.
extension SQLiteStore: CredentialStore {
    public func credential(id: String) async throws -> Credential? {
        try await self.database.read { db in try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM credentials WHERE id = ?"), arguments: [id]).map(Self.credential) }
    }

    public func versionedCredential(id: String) async throws -> (credential: Credential, version: Int64)? {
        try await self.database.read { db in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM credentials WHERE id = ?"), arguments: [id]).map { (Self.credential($0), $0["version"] as Int64) }
        }
    }

    public func credentials(holderID: String) async throws -> [Credential] {
        try await self.database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM credentials WHERE holder_id = ? ORDER BY not_before, id", arguments: [holderID]).map(Self.credential)
        }
    }

    public func setCredentialStatus(id: String, status: CredentialStatus) async throws {
        try await self.write { db in
            try db.execute(sql: "UPDATE credentials SET status = ? WHERE id = ?", arguments: [status.rawValue, id])
            guard db.changesCount == 1 else { throw SigilloError(.notFound, "no credential \(id)") }
        }
    }

    public func changeCredentialStatus(id: String, from: CredentialStatus, to: CredentialStatus, at time: Date) async throws -> Bool {
        try await self.write { db in
            let suspendedAt: Int64? = to == .suspended ? Self.seconds(time) : nil
            try db.execute(
                sql: "UPDATE credentials SET status = ?, suspended_at = ? WHERE id = ? AND status = ?",
                arguments: [to.rawValue, suspendedAt, id, from.rawValue])
            guard db.changesCount == 1 else { return false }
            try db.execute(sql: "DELETE FROM sads WHERE credential_id = ?", arguments: [id])
            return true
        }
    }

    public func credential(serialNumber: String) async throws -> Credential? {
        try await self.database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM credentials WHERE serial_number = ?", arguments: [serialNumber]).map(Self.credential)
        }
    }

    public func unusableCredentials() async throws -> [Credential] {
        try await self.database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM credentials WHERE status != ? ORDER BY serial_number", arguments: [CredentialStatus.active.rawValue])
                .map(Self.credential)
        }
    }

    public func revokeCredential(id: String, reason: RevocationReason, at time: Date) async throws -> Bool {
        try await self.write { db in
            guard let status = try String.fetchOne(db, sql: "SELECT status FROM credentials WHERE id = ?", arguments: [id]) else {
                throw SigilloError(.notFound, "no credential \(id)")
            }
            guard status != CredentialStatus.revoked.rawValue else { return false }
            try db.execute(
                sql: "UPDATE credentials SET status = ?, revocation_reason = ?, revoked_at = ?, wrapped_key = NULL WHERE id = ?",
                arguments: [CredentialStatus.revoked.rawValue, reason.rawValue, Self.seconds(time), id])
            try db.execute(sql: "DELETE FROM sads WHERE credential_id = ?", arguments: [id])
            return true
        }
    }

    public func credentialsExpiring(before date: Date) async throws -> [Credential] {
        try await self.database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM credentials WHERE status IN ('active', 'suspended') AND not_after < ? ORDER BY not_after, id",
                             arguments: [Self.seconds(date)]).map(Self.credential)
        }
    }

    public func setLastReminder(credentialID: String, days: Int) async throws {
        try await self.write { db in
            try db.execute(sql: "UPDATE credentials SET last_reminder_days = ? WHERE id = ?", arguments: [days, credentialID])
        }
    }

    public func addRenewedCredential(_ credential: Credential, replacing: String) async throws -> Bool {
        try await self.write { db in
            guard try String.fetchOne(db, sql: "SELECT status FROM credentials WHERE id = ?", arguments: [replacing]) == CredentialStatus.active.rawValue else {
                return false
            }
            // Two renewals racing with consecutive codes: the first to store its credential wins.
            guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM credentials WHERE replaces = ?)", arguments: [replacing]) == false else {
                return false
            }
            try Self.insert(credential: credential, db: db)
            try db.execute(sql: "UPDATE credentials SET replaces = ? WHERE id = ?", arguments: [replacing, credential.id])
            try db.execute(sql: "UPDATE holders SET state = ? WHERE id = ? AND state IN (?, ?)",
                           arguments: [HolderState.active.rawValue, credential.holderID, HolderState.active.rawValue, HolderState.expiring.rawValue])
            return true
        }
    }
}
