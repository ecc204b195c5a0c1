import Foundation
import GRDB
import SigilloDomain

/// Invitations, activation and the hardware OTP token inventory.
extension SQLiteStore: EnrollmentStore {
    @discardableResult
    public func createInvitation(_ invitation: Invitation) async throws -> Int {
        try await self.write { db in
            // Deleted, not flagged: an earlier code then answers exactly as a code never issued (its sealed pending
            // device goes too; secure_delete zeroes it). An activation racing this finds its row gone: invitation used.
            try db.execute(sql: "DELETE FROM invitations WHERE holder_id = ? AND used_at IS NULL", arguments: [invitation.holderID])
            let voided = db.changesCount
            try db.execute(
                sql: "INSERT INTO invitations (code_hash, holder_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                arguments: [Data(invitation.codeHash), invitation.holderID, Self.seconds(invitation.createdAt), Self.seconds(invitation.expiresAt)])
            return voided
        }
    }

    public func invitation(codeHash: [UInt8]) async throws -> Invitation? {
        try await self.database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM invitations WHERE code_hash = ?", arguments: [Data(codeHash)]) else { return nil }
            var pending: OTPDevice?
            if let kind = (row["pending_device_kind"] as String?).flatMap(OTPKind.init(rawValue:)) {
                pending = OTPDevice(
                    id: "pending", holderID: row["holder_id"], kind: kind, secret: try self.open(row["pending_device_secret"], "invitations/\(row["holder_id"] as String)"),
                    algorithm: OTPAlgorithm(rawValue: row["pending_device_algorithm"] ?? "SHA1") ?? .sha1, digits: row["pending_device_digits"] ?? 6,
                    counter: UInt64(row["pending_device_counter"] as Int64? ?? 0), serial: row["pending_device_serial"])
            }
            return Invitation(
                codeHash: codeHash, holderID: row["holder_id"], createdAt: Self.date(row["created_at"]), expiresAt: Self.date(row["expires_at"]),
                usedAt: (row["used_at"] as Int64?).map(Self.date), pendingDevice: pending)
        }
    }

    public func setPendingDevice(codeHash: [UInt8], device: OTPDevice?) async throws {
        let sealed = try device.map { try self.seal($0.secret, "invitations/\($0.holderID)") }
        try await self.write { db in
            try db.execute(
                sql: """
                    UPDATE invitations SET pending_device_kind = ?, pending_device_secret = ?, pending_device_algorithm = ?,
                        pending_device_digits = ?, pending_device_serial = ?, pending_device_counter = ?
                    WHERE code_hash = ? AND used_at IS NULL
                    """,
                arguments: [device?.kind.rawValue, sealed, device?.algorithm.rawValue, device?.digits, device?.serial,
                            device.map { Int64($0.counter) }, Data(codeHash)])
            guard db.changesCount == 1 else { throw SigilloError(.invitationUsed, "this invitation was already used") }
        }
    }

    public func completeActivation(codeHash: [UInt8], at time: Date, username: String, passwordHash: String, device: OTPDevice, credential: Credential) async throws {
        let sealed = try self.seal(device.secret, "otp_devices/\(device.holderID)")
        try await self.write { db in
            try db.execute(sql: "UPDATE invitations SET used_at = ? WHERE code_hash = ? AND used_at IS NULL", arguments: [Self.seconds(time), Data(codeHash)])
            guard db.changesCount == 1 else { throw SigilloError(.invitationUsed, "this invitation was already used") }
            try db.execute(
                sql: "UPDATE holders SET username = ?, password_hash = ?, state = ? WHERE id = ? AND state = ?",
                arguments: [username, passwordHash, HolderState.active.rawValue, device.holderID, HolderState.invited.rawValue])
            guard db.changesCount == 1 else { throw SigilloError(.illegalTransition, "the holder is no longer waiting for activation") }
            try db.execute(sql: "UPDATE otp_devices SET active = 0 WHERE holder_id = ?", arguments: [device.holderID])
            try Self.insert(device: device, sealedSecret: sealed, db: db)
            try Self.insert(credential: credential, db: db)
        }
    }

    public func importHardwareTokens(_ tokens: [HardwareToken], at time: Date) async throws -> Int {
        let sealed = try tokens.map { try self.seal($0.seed, "hardware_tokens/\($0.serial)") }
        return try await self.write { db in
            var added = 0
            for (token, seed) in zip(tokens, sealed) {
                try db.execute(sql: "INSERT OR IGNORE INTO hardware_tokens (serial, seed, digits, algorithm, imported_at) VALUES (?, ?, ?, ?, ?)",
                               arguments: [token.serial, seed, token.digits, token.algorithm.rawValue, Self.seconds(time)])
                added += db.changesCount
            }
            return added
        }
    }

    public func hardwareToken(serial: String) async throws -> HardwareToken? {
        try await self.database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM hardware_tokens WHERE serial = ?", arguments: [serial]).map {
                HardwareToken(serial: $0["serial"], seed: try self.open($0["seed"], "hardware_tokens/\($0["serial"] as String)"), digits: $0["digits"],
                              algorithm: OTPAlgorithm(rawValue: $0["algorithm"]) ?? .sha1)
            }
        }
    }
}
