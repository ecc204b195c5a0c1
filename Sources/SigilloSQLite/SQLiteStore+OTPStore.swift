import Foundation
import GRDB
import SigilloDomain

/// OTP devices and codes: TOTP steps and HOTP counters, SMS codes, device rebinding and mobile number changes.
extension SQLiteStore: OTPStore {
    public func activeOTPDevice(holderID: String) async throws -> OTPDevice? {
        try await self.database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM otp_devices WHERE holder_id = ? AND active = 1", arguments: [holderID]).map(self.device)
        }
    }

    public func advanceTOTP(deviceID: String, to step: UInt64) async throws -> Bool {
        try await self.write { db in
            try db.execute(sql: "UPDATE otp_devices SET last_step = ? WHERE id = ? AND active = 1 AND last_step < ?", arguments: [Int64(step), deviceID, Int64(step)])
            return db.changesCount == 1
        }
    }

    public func advanceHOTP(deviceID: String, from expected: UInt64, to next: UInt64) async throws -> Bool {
        try await self.write { db in
            try db.execute(sql: "UPDATE otp_devices SET counter = ? WHERE id = ? AND active = 1 AND counter = ?", arguments: [Int64(next), deviceID, Int64(expected)])
            return db.changesCount == 1
        }
    }

    public func storeSMSCode(holderID: String, purpose: SMSPurpose, codeHash: [UInt8], expiresAt: Date) async throws {
        // Keyed with the token's seed key: a plain SHA-256 of six digits would fall to a million guesses.
        let keyed = try self.keyedDigest(codeHash, "sms_codes/\(holderID)")
        try await self.write { db in
            // A new code replaces any earlier one for the same purpose.
            try db.execute(sql: "DELETE FROM sms_codes WHERE holder_id = ? AND purpose = ?", arguments: [holderID, purpose.rawValue])
            try db.execute(sql: "INSERT INTO sms_codes (holder_id, purpose, code_hash, expires_at) VALUES (?, ?, ?, ?)",
                           arguments: [holderID, purpose.rawValue, keyed, Self.seconds(expiresAt)])
        }
    }

    public func checkSMSCode(holderID: String, purpose: SMSPurpose, codeHash: [UInt8], now: Date, tries: Int) async throws -> SMSCodeCheck {
        let keyed = try self.keyedDigest(codeHash, "sms_codes/\(holderID)")
        return try await self.write { db in
            guard let row = try Row.fetchOne(
                db, sql: "SELECT id, code_hash FROM sms_codes WHERE holder_id = ? AND purpose = ? AND used_at IS NULL AND expires_at > ? AND failures < ?",
                arguments: [holderID, purpose.rawValue, Self.seconds(now), tries]) else { return .none }
            let id: Int64 = row["id"]
            if row["code_hash"] as Data == keyed {
                try db.execute(sql: "UPDATE sms_codes SET used_at = ? WHERE id = ?", arguments: [Self.seconds(now), id])
                return .accepted
            }
            try db.execute(sql: "UPDATE sms_codes SET failures = failures + 1 WHERE id = ?", arguments: [id])
            return .rejected
        }
    }

    public func storeMobileChange(holderID: String, mobile: String, codeHash: [UInt8], expiresAt: Date) async throws {
        let keyed = try self.keyedDigest(codeHash, "mobile_changes/\(holderID)")
        try await self.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO mobile_changes (holder_id, mobile, code_hash, expires_at, failures) VALUES (?, ?, ?, ?, 0)",
                           arguments: [holderID, mobile, keyed, Self.seconds(expiresAt)])
        }
    }

    public func completeMobileChange(holderID: String, codeHash: [UInt8], now: Date, tries: Int) async throws -> String? {
        let keyed = try self.keyedDigest(codeHash, "mobile_changes/\(holderID)")
        return try await self.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT mobile, code_hash FROM mobile_changes WHERE holder_id = ? AND expires_at > ? AND failures < ?",
                                             arguments: [holderID, Self.seconds(now), tries]) else { return nil }
            guard row["code_hash"] as Data == keyed else {
                try db.execute(sql: "UPDATE mobile_changes SET failures = failures + 1 WHERE holder_id = ?", arguments: [holderID])
                return nil
            }
            let mobile: String = row["mobile"]
            try db.execute(sql: "DELETE FROM mobile_changes WHERE holder_id = ?", arguments: [holderID])
            try db.execute(sql: "UPDATE holders SET mobile = ? WHERE id = ?", arguments: [mobile, holderID])
            return mobile
        }
    }

    public func createDeviceRebindRequest(tokenHash: [UInt8], holderID: String, createdAt: Date, expiresAt: Date) async throws {
        try await self.write { db in
            try db.execute(sql: "INSERT INTO device_rebind_requests (token_hash, holder_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                           arguments: [Data(tokenHash), holderID, Self.seconds(createdAt), Self.seconds(expiresAt)])
        }
    }

    public func deviceRebindRequest(tokenHash: [UInt8]) async throws -> (holderID: String, expiresAt: Date, usedAt: Date?)? {
        try await self.database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM device_rebind_requests WHERE token_hash = ?", arguments: [Data(tokenHash)]).map { row in
                (row["holder_id"], Self.date(row["expires_at"]), (row["used_at"] as Int64?).map(Self.date))
            }
        }
    }

    public func spendDeviceRebindRequest(tokenHash: [UInt8], now: Date) async throws -> String? {
        try await self.write { db in
            try String.fetchOne(
                db, sql: "UPDATE device_rebind_requests SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? RETURNING holder_id",
                arguments: [Self.seconds(now), Data(tokenHash), Self.seconds(now)])
        }
    }

    public func createDeviceRebind(tokenHash: [UInt8], device: OTPDevice, createdAt: Date, expiresAt: Date) async throws {
        let sealed = try self.seal(device.secret, "device_rebinds/\(device.holderID)")
        try await self.write { db in
            try db.execute(
                sql: """
                    INSERT INTO device_rebinds (token_hash, holder_id, kind, secret, algorithm, digits, serial, created_at, expires_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [Data(tokenHash), device.holderID, device.kind.rawValue, sealed, device.algorithm.rawValue, device.digits,
                            device.serial, Self.seconds(createdAt), Self.seconds(expiresAt)])
        }
    }

    public func deviceRebind(tokenHash: [UInt8]) async throws -> (device: OTPDevice, expiresAt: Date, usedAt: Date?)? {
        try await self.database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM device_rebinds WHERE token_hash = ?", arguments: [Data(tokenHash)]) else { return nil }
            let device = OTPDevice(
                id: "pending", holderID: row["holder_id"], kind: OTPKind(rawValue: row["kind"]) ?? .totp,
                secret: try self.open(row["secret"], "device_rebinds/\(row["holder_id"] as String)"),
                algorithm: OTPAlgorithm(rawValue: row["algorithm"]) ?? .sha1, digits: row["digits"], serial: row["serial"])
            return (device, Self.date(row["expires_at"]), (row["used_at"] as Int64?).map(Self.date))
        }
    }

    public func completeDeviceRebind(tokenHash: [UInt8], device: OTPDevice, now: Date) async throws -> Bool {
        let sealed = try self.seal(device.secret, "otp_devices/\(device.holderID)")
        return try await self.write { db in
            try db.execute(sql: "UPDATE device_rebinds SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
                           arguments: [Self.seconds(now), Data(tokenHash), Self.seconds(now)])
            guard db.changesCount == 1 else { return false }
            try db.execute(sql: "UPDATE device_rebinds SET used_at = ? WHERE holder_id = ? AND used_at IS NULL", arguments: [Self.seconds(now), device.holderID])
            // The old device stops working at once; a hardware token's serial is freed for a later re-import.
            try db.execute(sql: "UPDATE otp_devices SET active = 0, serial = NULL WHERE holder_id = ?", arguments: [device.holderID])
            try Self.insert(device: device, sealedSecret: sealed, db: db)
            try db.execute(sql: "DELETE FROM sads WHERE holder_id = ?", arguments: [device.holderID])
            try Self.clearAttempts(holderID: device.holderID, secret: .otp, db: db)
            return true
        }
    }
}
