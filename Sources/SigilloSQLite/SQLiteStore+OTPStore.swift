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

    public func storeSMSCode(holderID: String, codeHash: [UInt8], expiresAt: Date) async throws {
        try await self.write { db in
            // A new code replaces any earlier one.
            try db.execute(sql: "DELETE FROM sms_codes WHERE holder_id = ?", arguments: [holderID])
            try db.execute(sql: "INSERT INTO sms_codes (holder_id, code_hash, expires_at) VALUES (?, ?, ?)", arguments: [holderID, Data(codeHash), Self.seconds(expiresAt)])
        }
    }

    public func consumeSMSCode(holderID: String, codeHash: [UInt8], now: Date) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE sms_codes SET used_at = ? WHERE holder_id = ? AND code_hash = ? AND used_at IS NULL AND expires_at > ?",
                arguments: [Self.seconds(now), holderID, Data(codeHash), Self.seconds(now)])
            return db.changesCount == 1
        }
    }

    public func storeMobileChange(holderID: String, mobile: String, codeHash: [UInt8], expiresAt: Date) async throws {
        try await self.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO mobile_changes (holder_id, mobile, code_hash, expires_at) VALUES (?, ?, ?, ?)",
                           arguments: [holderID, mobile, Data(codeHash), Self.seconds(expiresAt)])
        }
    }

    public func completeMobileChange(holderID: String, codeHash: [UInt8], now: Date) async throws -> String? {
        try await self.write { db in
            guard let mobile = try String.fetchOne(db, sql: "SELECT mobile FROM mobile_changes WHERE holder_id = ? AND code_hash = ? AND expires_at > ?",
                                                   arguments: [holderID, Data(codeHash), Self.seconds(now)]) else { return nil }
            try db.execute(sql: "DELETE FROM mobile_changes WHERE holder_id = ?", arguments: [holderID])
            try db.execute(sql: "UPDATE holders SET mobile = ? WHERE id = ?", arguments: [mobile, holderID])
            return mobile
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
            try db.execute(sql: "UPDATE credentials SET otp_failures = 0 WHERE holder_id = ?", arguments: [device.holderID])
            return true
        }
    }
}
