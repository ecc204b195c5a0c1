import Foundation
import PKCS11
import PostgresNIO
import SigilloDomain

/// Attempt reservation: the same single upsert as the SQLite store; PostgreSQL re-checks its `WHERE` against a row a
/// concurrent transaction (of any node) just changed, so at most `limit` attempts are ever in flight or settled.
extension PostgresStore: AttemptStore {
    public func reserveAttempt(holderID: String, secret: SecretKind, limit: Int, now: Date, lease: TimeInterval) async throws -> AttemptReservation {
        let (now, until) = (Self.milliseconds(now), Self.milliseconds(now.addingTimeInterval(lease)))
        let counted = try await self.first("""
            INSERT INTO secret_attempts AS a (holder_id, secret, failures, inflight, inflight_until) VALUES (\(holderID), \(secret.rawValue), 0, 1, \(until))
            ON CONFLICT (holder_id, secret) DO UPDATE
                SET inflight = (CASE WHEN a.inflight_until < \(now) THEN 0 ELSE a.inflight END) + 1, inflight_until = excluded.inflight_until
                WHERE a.failures + (CASE WHEN a.inflight_until < \(now) THEN 0 ELSE a.inflight END) < \(Int64(limit))
            RETURNING a.inflight
            """)
        if counted != nil { return .reserved }
        let failures = try await self.first("SELECT failures FROM secret_attempts WHERE holder_id = \(holderID) AND secret = \(secret.rawValue)")
            .map { try $0.integer("failures") } ?? 0
        return failures >= limit ? .locked : .busy
    }

    public func resolveAttempt(holderID: String, secret: SecretKind, right: Bool) async throws -> Int {
        try await self.first("""
            UPDATE secret_attempts SET failures = CASE WHEN \(right) THEN 0 ELSE failures + 1 END, inflight = GREATEST(inflight - 1, 0)
            WHERE holder_id = \(holderID) AND secret = \(secret.rawValue) RETURNING failures
            """).map { Int(try $0.integer("failures")) } ?? 0
    }

    public func clearAttempts(holderID: String, secrets: Set<SecretKind>) async throws {
        guard !secrets.isEmpty else { return }
        try await self.execute("UPDATE secret_attempts SET failures = 0 WHERE holder_id = \(holderID) AND secret = ANY(\(secrets.map(\.rawValue)))")
    }

    /// Clears a secret's failures inside another transaction; checks in flight keep their places.
    static func clearAttempts(holderID: String, secret: SecretKind, _ connection: PostgresConnection) async throws {
        try await Self.execute(connection, "UPDATE secret_attempts SET failures = 0 WHERE holder_id = \(holderID) AND secret = \(secret.rawValue)")
    }

    public func secretFailures(holderID: String) async throws -> SecretFailures {
        var failures = SecretFailures()
        for row in try await self.rows("SELECT secret, failures FROM secret_attempts WHERE holder_id = \(holderID)") {
            let count = Int(try row.integer("failures"))
            switch SecretKind(rawValue: try row.text("secret")) {
            case .password: failures.password = count
            case .otp: failures.otp = count
            case .userCode: failures.userCode = count
            case nil: break
            }
        }
        return failures
    }
}

/// OTP devices and codes. TOTP steps and HOTP counters advance by compare-and-set, so a code is accepted once across
/// every node (the step or counter it used is the row's value; a second use finds it moved).
extension PostgresStore: OTPStore {
    public func activeOTPDevice(holderID: String) async throws -> OTPDevice? {
        try await self.first("SELECT * FROM otp_devices WHERE holder_id = \(holderID) AND active").map(self.device)
    }

    public func advanceTOTP(deviceID: String, to step: UInt64) async throws -> Bool {
        try await self.first("UPDATE otp_devices SET last_step = \(Int64(step)) WHERE id = \(deviceID) AND active AND last_step < \(Int64(step)) RETURNING 1") != nil
    }

    public func advanceHOTP(deviceID: String, from expected: UInt64, to next: UInt64) async throws -> Bool {
        try await self.first("UPDATE otp_devices SET counter = \(Int64(next)) WHERE id = \(deviceID) AND active AND counter = \(Int64(expected)) RETURNING 1") != nil
    }

    public func storeSMSCode(holderID: String, purpose: SMSPurpose, codeHash: [UInt8], expiresAt: Date) async throws {
        let keyed = try self.keyedDigest(codeHash, "sms_codes/\(holderID)")
        try await self.transaction { connection in
            // One code per holder and purpose, however many are asked for at once.
            try await Self.lockHolder(holderID, connection)
            try await Self.execute(connection, "DELETE FROM sms_codes WHERE holder_id = \(holderID) AND purpose = \(purpose.rawValue)")
            try await Self.execute(connection, """
                INSERT INTO sms_codes (holder_id, purpose, code_hash, expires_at) VALUES (\(holderID), \(purpose.rawValue), \(keyed), \(Self.seconds(expiresAt)))
                """)
        }
    }

    public func checkSMSCode(holderID: String, purpose: SMSPurpose, codeHash: [UInt8], now: Date, tries: Int) async throws -> SMSCodeCheck {
        let keyed = try self.keyedDigest(codeHash, "sms_codes/\(holderID)")
        return try await self.transaction { connection in
            // Locked: concurrent checks of one code take turns, each sees the previous one's count and use.
            guard let row = try await Self.first(connection, """
                SELECT id, code_hash FROM sms_codes WHERE holder_id = \(holderID) AND purpose = \(purpose.rawValue) AND used_at IS NULL
                    AND expires_at > \(Self.seconds(now)) AND failures < \(Int64(tries)) ORDER BY id DESC LIMIT 1 FOR UPDATE
                """) else { return .none }
            let id = try row.integer("id")
            if try row.data("code_hash") == keyed {
                try await Self.execute(connection, "UPDATE sms_codes SET used_at = \(Self.seconds(now)) WHERE id = \(id)")
                return .accepted
            }
            try await Self.execute(connection, "UPDATE sms_codes SET failures = failures + 1 WHERE id = \(id)")
            return .rejected
        }
    }

    public func storeMobileChange(holderID: String, mobile: String, codeHash: [UInt8], expiresAt: Date) async throws {
        let keyed = try self.keyedDigest(codeHash, "mobile_changes/\(holderID)")
        try await self.execute("""
            INSERT INTO mobile_changes (holder_id, mobile, code_hash, expires_at, failures) VALUES (\(holderID), \(mobile), \(keyed), \(Self.seconds(expiresAt)), 0)
            ON CONFLICT (holder_id) DO UPDATE SET mobile = excluded.mobile, code_hash = excluded.code_hash, expires_at = excluded.expires_at, failures = 0
            """)
    }

    public func completeMobileChange(holderID: String, codeHash: [UInt8], now: Date, tries: Int) async throws -> String? {
        let keyed = try self.keyedDigest(codeHash, "mobile_changes/\(holderID)")
        return try await self.transaction { connection in
            guard let row = try await Self.first(connection, """
                SELECT mobile, code_hash FROM mobile_changes WHERE holder_id = \(holderID) AND expires_at > \(Self.seconds(now)) AND failures < \(Int64(tries))
                FOR UPDATE
                """) else { return nil }
            guard try row.data("code_hash") == keyed else {
                try await Self.execute(connection, "UPDATE mobile_changes SET failures = failures + 1 WHERE holder_id = \(holderID)")
                return nil
            }
            let mobile = try row.text("mobile")
            try await Self.execute(connection, "DELETE FROM mobile_changes WHERE holder_id = \(holderID)")
            try await Self.execute(connection, "UPDATE holders SET mobile = \(mobile) WHERE id = \(holderID)")
            return mobile
        }
    }

    public func createDeviceRebindRequest(tokenHash: [UInt8], holderID: String, createdAt: Date, expiresAt: Date) async throws {
        try await self.execute("""
            INSERT INTO device_rebind_requests (token_hash, holder_id, created_at, expires_at)
            VALUES (\(Data(tokenHash)), \(holderID), \(Self.seconds(createdAt)), \(Self.seconds(expiresAt)))
            """)
    }

    public func deviceRebindRequest(tokenHash: [UInt8]) async throws -> (holderID: String, expiresAt: Date, usedAt: Date?)? {
        try await self.first("SELECT * FROM device_rebind_requests WHERE token_hash = \(Data(tokenHash))").map { row in
            (try row.text("holder_id"), Self.date(try row.integer("expires_at")), try row.optionalInteger("used_at").map(Self.date))
        }
    }

    public func spendDeviceRebindRequest(tokenHash: [UInt8], now: Date) async throws -> String? {
        try await self.first("""
            UPDATE device_rebind_requests SET used_at = \(Self.seconds(now)) WHERE token_hash = \(Data(tokenHash)) AND used_at IS NULL
                AND expires_at > \(Self.seconds(now)) RETURNING holder_id
            """).map { try $0.text("holder_id") }
    }

    public func createDeviceRebind(tokenHash: [UInt8], device: OTPDevice, createdAt: Date, expiresAt: Date) async throws {
        let sealed = try self.seal(device.secret, "device_rebinds/\(device.holderID)")
        try await self.execute("""
            INSERT INTO device_rebinds (token_hash, holder_id, kind, secret, algorithm, digits, serial, created_at, expires_at)
            VALUES (\(Data(tokenHash)), \(device.holderID), \(device.kind.rawValue), \(sealed), \(device.algorithm.rawValue), \(Int64(device.digits)),
                    \(device.serial), \(Self.seconds(createdAt)), \(Self.seconds(expiresAt)))
            """)
    }

    public func deviceRebind(tokenHash: [UInt8]) async throws -> (device: OTPDevice, expiresAt: Date, usedAt: Date?)? {
        guard let row = try await self.first("SELECT * FROM device_rebinds WHERE token_hash = \(Data(tokenHash))") else { return nil }
        let holderID = try row.text("holder_id")
        let device = OTPDevice(
            id: "pending", holderID: holderID, kind: OTPKind(rawValue: try row.text("kind")) ?? .totp,
            secret: try self.open(try row.data("secret"), "device_rebinds/\(holderID)"),
            algorithm: OTPAlgorithm(rawValue: try row.text("algorithm")) ?? .sha1, digits: Int(try row.integer("digits")), serial: try row.optionalText("serial"))
        return (device, Self.date(try row.integer("expires_at")), try row.optionalInteger("used_at").map(Self.date))
    }

    public func completeDeviceRebind(tokenHash: [UInt8], device: OTPDevice, now: Date) async throws -> Bool {
        let sealed = try self.seal(device.secret, "otp_devices/\(device.holderID)")
        let time = Self.seconds(now)
        return try await self.transaction { connection in
            guard try await Self.first(connection, """
                UPDATE device_rebinds SET used_at = \(time) WHERE token_hash = \(Data(tokenHash)) AND used_at IS NULL AND expires_at > \(time) RETURNING 1
                """) != nil else { return false }
            try await Self.execute(connection, "UPDATE device_rebinds SET used_at = \(time) WHERE holder_id = \(device.holderID) AND used_at IS NULL")
            try await Self.execute(connection, "UPDATE otp_devices SET active = FALSE, serial = NULL WHERE holder_id = \(device.holderID)")
            try await Self.insert(device: device, sealedSecret: sealed, connection)
            try await Self.execute(connection, "DELETE FROM sads WHERE holder_id = \(device.holderID)")
            try await Self.clearAttempts(holderID: device.holderID, secret: .otp, connection)
            return true
        }
    }
}

/// Signature activation data: consumption is one conditional `UPDATE`, atomic across nodes.
extension PostgresStore: SADStore {
    public func insertSAD(_ sad: SADRecord) async throws {
        try await self.execute("""
            INSERT INTO sads (id_hash, holder_id, credential_id, hash_algorithm, hashes, num_signatures, used, expires_at, authorized_at, client_id)
            VALUES (\(Data(sad.idHash)), \(sad.holderID), \(sad.credentialID), \(sad.hashAlgorithm.rawValue), \(Data(sad.hashes.joined())),
                    \(Int64(sad.numSignatures)), \(Int64(sad.used)), \(Self.milliseconds(sad.expiresAt)), \(Self.milliseconds(sad.authorizedAt)), \(sad.clientID))
            """)
    }

    public func sad(idHash: [UInt8]) async throws -> SADRecord? {
        guard let row = try await self.first("SELECT * FROM sads WHERE id_hash = \(Data(idHash))"),
              let algorithm = HashAlgorithm(rawValue: try row.text("hash_algorithm")) else { return nil }
        let blob = try row.bytes("hashes")
        let hashes = stride(from: 0, to: blob.count, by: algorithm.digestLength).map { Array(blob[$0..<min($0 + algorithm.digestLength, blob.count)]) }
        return SADRecord(
            idHash: idHash, holderID: try row.text("holder_id"), credentialID: try row.text("credential_id"), hashAlgorithm: algorithm, hashes: hashes,
            numSignatures: Int(try row.integer("num_signatures")), used: Int(try row.integer("used")),
            expiresAt: Self.millisecondDate(try row.integer("expires_at")), authorizedAt: Self.millisecondDate(try row.integer("authorized_at")),
            clientID: try row.optionalText("client_id"))
    }

    public func consumeSAD(idHash: [UInt8], count: Int, now: Date) async throws -> Bool {
        try await self.first("""
            UPDATE sads SET used = used + \(Int64(count)) WHERE id_hash = \(Data(idHash)) AND used + \(Int64(count)) <= num_signatures
                AND expires_at > \(Self.milliseconds(now)) RETURNING 1
            """) != nil
    }

    public func spendSAD(_ spending: SADSpending) async throws -> Bool {
        // One statement re-checks what the caller may have cached (credential row version, token) and spends; the
        // audit event follows through the batcher (one transaction per batch under the chain's head row).
        let count = Int64(spending.count)
        let now = Self.milliseconds(spending.now)
        let spent: Bool
        if let token = spending.accessTokenHash {
            spent = try await self.first("""
                UPDATE sads SET used = used + \(count) WHERE id_hash = \(Data(spending.idHash)) AND holder_id = \(spending.holderID)
                    AND credential_id = \(spending.credentialID) AND used + \(count) <= num_signatures AND expires_at > \(now)
                    AND EXISTS (SELECT 1 FROM credentials WHERE id = \(spending.credentialID) AND version = \(spending.credentialVersion) AND status = 'active')
                    AND EXISTS (SELECT 1 FROM access_tokens WHERE token_hash = \(Data(token)) AND holder_id = \(spending.holderID) AND NOT revoked
                                AND expires_at > \(Self.seconds(spending.now)))
                RETURNING 1
                """) != nil
        } else {
            spent = try await self.first("""
                UPDATE sads SET used = used + \(count) WHERE id_hash = \(Data(spending.idHash)) AND holder_id = \(spending.holderID)
                    AND credential_id = \(spending.credentialID) AND used + \(count) <= num_signatures AND expires_at > \(now)
                    AND EXISTS (SELECT 1 FROM credentials WHERE id = \(spending.credentialID) AND version = \(spending.credentialVersion) AND status = 'active')
                RETURNING 1
                """) != nil
        }
        if spent { try await self.audit(spending.audit, at: spending.now) }
        return spent
    }

    public func refundSAD(idHash: [UInt8], count: Int) async throws {
        try await self.execute("UPDATE sads SET used = GREATEST(used - \(Int64(count)), 0) WHERE id_hash = \(Data(idHash))")
    }

    public func extendSAD(idHash: [UInt8], expiresAt: Date, now: Date) async throws -> Bool {
        try await self.first("""
            UPDATE sads SET expires_at = \(Self.milliseconds(expiresAt)) WHERE id_hash = \(Data(idHash)) AND expires_at > \(Self.milliseconds(now))
                AND used < num_signatures RETURNING 1
            """) != nil
    }

    public func deleteSAD(idHash: [UInt8]) async throws {
        try await self.execute("DELETE FROM sads WHERE id_hash = \(Data(idHash))")
    }

    public func deleteSADs(credentialID: String) async throws {
        try await self.execute("DELETE FROM sads WHERE credential_id = \(credentialID)")
    }
}

extension PostgresStore: AccessTokenStore {
    public func createAccessToken(tokenHash: [UInt8], holderID: String, expiresAt: Date, clientID: String?) async throws {
        try await self.execute("""
            INSERT INTO access_tokens (token_hash, holder_id, expires_at, client_id) VALUES (\(Data(tokenHash)), \(holderID), \(Self.seconds(expiresAt)), \(clientID))
            """)
    }

    public func accessTokenClient(tokenHash: [UInt8]) async throws -> String? {
        try await self.first("SELECT client_id FROM access_tokens WHERE token_hash = \(Data(tokenHash)) AND NOT revoked").flatMap { try $0.optionalText("client_id") }
    }

    public func accessToken(tokenHash: [UInt8]) async throws -> (holderID: String, expiresAt: Date)? {
        try await self.first("SELECT holder_id, expires_at FROM access_tokens WHERE token_hash = \(Data(tokenHash)) AND NOT revoked").map {
            (try $0.text("holder_id"), Self.date(try $0.integer("expires_at")))
        }
    }

    public func revokeAccessToken(tokenHash: [UInt8]) async throws {
        try await self.execute("UPDATE access_tokens SET revoked = TRUE WHERE token_hash = \(Data(tokenHash))")
    }

    public func revokeAccessTokens(holderID: String) async throws {
        try await self.execute("UPDATE access_tokens SET revoked = TRUE WHERE holder_id = \(holderID)")
    }
}

extension PostgresStore: PasswordResetStore {
    public func createPasswordReset(tokenHash: [UInt8], holderID: String, createdAt: Date, expiresAt: Date) async throws {
        try await self.execute("""
            INSERT INTO password_resets (token_hash, holder_id, created_at, expires_at)
            VALUES (\(Data(tokenHash)), \(holderID), \(Self.seconds(createdAt)), \(Self.seconds(expiresAt)))
            """)
    }

    public func passwordReset(tokenHash: [UInt8]) async throws -> (holderID: String, expiresAt: Date, usedAt: Date?)? {
        try await self.first("SELECT * FROM password_resets WHERE token_hash = \(Data(tokenHash))").map { row in
            (try row.text("holder_id"), Self.date(try row.integer("expires_at")), try row.optionalInteger("used_at").map(Self.date))
        }
    }

    public func completePasswordReset(tokenHash: [UInt8], passwordHash: String, now: Date) async throws -> String? {
        let time = Self.seconds(now)
        return try await self.transaction { connection in
            guard let row = try await Self.first(connection, """
                UPDATE password_resets SET used_at = \(time) WHERE token_hash = \(Data(tokenHash)) AND used_at IS NULL AND expires_at > \(time) RETURNING holder_id
                """) else { return nil }
            let holderID = try row.text("holder_id")
            try await Self.execute(connection, "UPDATE password_resets SET used_at = \(time) WHERE holder_id = \(holderID) AND used_at IS NULL")
            try await Self.execute(connection, "UPDATE holders SET password_hash = \(passwordHash) WHERE id = \(holderID)")
            try await Self.execute(connection, "UPDATE access_tokens SET revoked = TRUE WHERE holder_id = \(holderID)")
            try await Self.execute(connection, "DELETE FROM sads WHERE holder_id = \(holderID)")
            try await Self.clearAttempts(holderID: holderID, secret: .password, connection)
            return holderID
        }
    }
}
