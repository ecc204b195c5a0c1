import Foundation
import PostgresNIO
import SigilloDomain

/// Holders, enrolment and credentials.
extension PostgresStore: HolderStore {
    public func createHolder(_ holder: Holder) async throws {
        try await self.execute("""
            INSERT INTO holders (id, username, given_name, surname, fiscal_code, email, mobile, state, password_hash, created_at)
            VALUES (\(holder.id), \(holder.username), \(holder.givenName), \(holder.surname), \(holder.fiscalCode), \(holder.email), \(holder.mobile),
                    \(holder.state.rawValue), \(holder.passwordHash), \(Self.seconds(holder.createdAt)))
            """)
    }

    public func holder(id: String) async throws -> Holder? {
        try await self.first("SELECT * FROM holders WHERE id = \(id)").map(Self.holder)
    }

    public func holder(username: String) async throws -> Holder? {
        try await self.first("SELECT * FROM holders WHERE username = \(username)").map(Self.holder)
    }

    public func holders() async throws -> [Holder] {
        try await self.rows("SELECT * FROM holders ORDER BY created_at, id").map(Self.holder)
    }

    public func setHolderState(id: String, state: HolderState) async throws {
        guard try await self.first("UPDATE holders SET state = \(state.rawValue) WHERE id = \(id) RETURNING id") != nil else {
            throw SigilloError(.notFound, "no holder \(id)")
        }
    }

    public func setHolderMobile(id: String, mobile: String) async throws {
        guard try await self.first("UPDATE holders SET mobile = \(mobile) WHERE id = \(id) RETURNING id") != nil else {
            throw SigilloError(.notFound, "no holder \(id)")
        }
    }

    public func setUserCodeHash(holderID: String, hash: String) async throws {
        try await self.transaction { connection in
            try await Self.execute(connection, "UPDATE holders SET user_code_hash = \(hash) WHERE id = \(holderID)")
            try await Self.clearAttempts(holderID: holderID, secret: .userCode, connection)
        }
    }

    public func userCode(holderID: String) async throws -> String? {
        try await self.first("SELECT user_code_hash FROM holders WHERE id = \(holderID)").flatMap { try $0.optionalText("user_code_hash") }
    }

    public func transitionHolder(id: String, from: Set<HolderState>, to: HolderState) async throws -> Bool {
        let states = from.map(\.rawValue)
        return try await self.first("UPDATE holders SET state = \(to.rawValue) WHERE id = \(id) AND state = ANY(\(states)) RETURNING id") != nil
    }

    public func holder(email: String) async throws -> Holder? {
        try await self.first("SELECT * FROM holders WHERE email = \(email) AND state != 'revoked'").map(Self.holder)
    }

    public func holder(mobile: String) async throws -> Holder? {
        try await self.first("SELECT * FROM holders WHERE mobile = \(mobile) AND state != 'revoked'").map(Self.holder)
    }
}

extension PostgresStore {
    /// Locks a holder's row until the transaction ends, so that changes of that holder's rows (a new invitation, a new
    /// SMS code) made by several nodes at once take turns. `NO KEY UPDATE`: rows referring to the holder can still be added.
    static func lockHolder(_ holderID: String, _ connection: PostgresConnection) async throws {
        try await Self.execute(connection, "SELECT 1 FROM holders WHERE id = \(holderID) FOR NO KEY UPDATE")
    }
}

extension PostgresStore: EnrollmentStore {
    @discardableResult
    public func createInvitation(_ invitation: Invitation) async throws -> Int {
        try await self.transaction { connection in
            // The holder's row is locked first: invitations racing for one holder take turns, so one code is left.
            try await Self.lockHolder(invitation.holderID, connection)
            // Deleted, not flagged: an earlier code then answers exactly as a code never issued.
            let voided = try await Self.rows(connection, "DELETE FROM invitations WHERE holder_id = \(invitation.holderID) AND used_at IS NULL RETURNING 1").count
            try await Self.execute(connection, """
                INSERT INTO invitations (code_hash, holder_id, created_at, expires_at)
                VALUES (\(Data(invitation.codeHash)), \(invitation.holderID), \(Self.seconds(invitation.createdAt)), \(Self.seconds(invitation.expiresAt)))
                """)
            return voided
        }
    }

    public func invitation(codeHash: [UInt8]) async throws -> Invitation? {
        guard let row = try await self.first("SELECT * FROM invitations WHERE code_hash = \(Data(codeHash))") else { return nil }
        let holderID = try row.text("holder_id")
        var pending: OTPDevice?
        if let kind = try row.optionalText("pending_device_kind").flatMap(OTPKind.init(rawValue:)) {
            pending = OTPDevice(
                id: "pending", holderID: holderID, kind: kind, secret: try self.open(try row.optionalData("pending_device_secret"), "invitations/\(holderID)"),
                algorithm: OTPAlgorithm(rawValue: try row.optionalText("pending_device_algorithm") ?? "SHA1") ?? .sha1,
                digits: Int(try row.optionalInteger("pending_device_digits") ?? 6),
                counter: UInt64(try row.optionalInteger("pending_device_counter") ?? 0), serial: try row.optionalText("pending_device_serial"))
        }
        return Invitation(
            codeHash: codeHash, holderID: holderID, createdAt: Self.date(try row.integer("created_at")), expiresAt: Self.date(try row.integer("expires_at")),
            usedAt: try row.optionalInteger("used_at").map(Self.date), pendingDevice: pending)
    }

    public func setPendingDevice(codeHash: [UInt8], device: OTPDevice?) async throws {
        let sealed = try device.map { try self.seal($0.secret, "invitations/\($0.holderID)") }
        let updated = try await self.first("""
            UPDATE invitations SET pending_device_kind = \(device?.kind.rawValue), pending_device_secret = \(sealed),
                pending_device_algorithm = \(device?.algorithm.rawValue), pending_device_digits = \(device.map { Int64($0.digits) }),
                pending_device_serial = \(device?.serial), pending_device_counter = \(device.map { Int64($0.counter) })
            WHERE code_hash = \(Data(codeHash)) AND used_at IS NULL RETURNING 1
            """)
        guard updated != nil else { throw SigilloError(.invitationUsed, "this invitation was already used") }
    }

    public func completeActivation(codeHash: [UInt8], at time: Date, username: String, passwordHash: String, device: OTPDevice, credential: Credential) async throws {
        let sealed = try self.seal(device.secret, "otp_devices/\(device.holderID)")
        try await self.transaction { connection in
            guard try await Self.first(connection, """
                UPDATE invitations SET used_at = \(Self.seconds(time)) WHERE code_hash = \(Data(codeHash)) AND used_at IS NULL RETURNING 1
                """) != nil else {
                throw SigilloError(.invitationUsed, "this invitation was already used")
            }
            guard try await Self.first(connection, """
                UPDATE holders SET username = \(username), password_hash = \(passwordHash), state = \(HolderState.active.rawValue)
                WHERE id = \(device.holderID) AND state = \(HolderState.invited.rawValue) RETURNING 1
                """) != nil else {
                throw SigilloError(.illegalTransition, "the holder is no longer waiting for activation")
            }
            try await Self.execute(connection, "UPDATE otp_devices SET active = FALSE WHERE holder_id = \(device.holderID)")
            try await Self.insert(device: device, sealedSecret: sealed, connection)
            try await Self.insert(credential: credential, connection)
        }
    }

    public func importHardwareTokens(_ tokens: [HardwareToken], at time: Date) async throws -> Int {
        let sealed = try tokens.map { try self.seal($0.seed, "hardware_tokens/\($0.serial)") }
        return try await self.transaction { connection in
            var added = 0
            for (token, seed) in zip(tokens, sealed) {
                added += try await Self.rows(connection, """
                    INSERT INTO hardware_tokens (serial, seed, digits, algorithm, imported_at)
                    VALUES (\(token.serial), \(seed), \(Int64(token.digits)), \(token.algorithm.rawValue), \(Self.seconds(time)))
                    ON CONFLICT (serial) DO NOTHING RETURNING 1
                    """).count
            }
            return added
        }
    }

    public func hardwareToken(serial: String) async throws -> HardwareToken? {
        try await self.first("SELECT * FROM hardware_tokens WHERE serial = \(serial)").map {
            HardwareToken(serial: try $0.text("serial"), seed: try self.open(try $0.data("seed"), "hardware_tokens/\(try $0.text("serial"))"),
                          digits: Int(try $0.integer("digits")), algorithm: OTPAlgorithm(rawValue: try $0.text("algorithm")) ?? .sha1)
        }
    }
}

extension PostgresStore: CredentialStore {
    public func credential(id: String) async throws -> Credential? {
        try await self.first("SELECT * FROM credentials WHERE id = \(id)").map(Self.credential)
    }

    public func versionedCredential(id: String) async throws -> (credential: Credential, version: Int64)? {
        guard let row = try await self.first("SELECT * FROM credentials WHERE id = \(id)") else { return nil }
        return (try Self.credential(row), try row.integer("version"))
    }

    public func credentials(holderID: String) async throws -> [Credential] {
        try await self.rows("SELECT * FROM credentials WHERE holder_id = \(holderID) ORDER BY not_before, id").map(Self.credential)
    }

    public func setCredentialStatus(id: String, status: CredentialStatus) async throws {
        guard try await self.first("UPDATE credentials SET status = \(status.rawValue) WHERE id = \(id) RETURNING 1") != nil else {
            throw SigilloError(.notFound, "no credential \(id)")
        }
    }

    public func changeCredentialStatus(id: String, from: CredentialStatus, to: CredentialStatus, at time: Date) async throws -> Bool {
        let suspendedAt: Int64? = to == .suspended ? Self.seconds(time) : nil
        return try await self.transaction { connection in
            guard try await Self.first(connection, """
                UPDATE credentials SET status = \(to.rawValue), suspended_at = \(suspendedAt) WHERE id = \(id) AND status = \(from.rawValue) RETURNING 1
                """) != nil else { return false }
            try await Self.execute(connection, "DELETE FROM sads WHERE credential_id = \(id)")
            return true
        }
    }

    public func credential(serialNumber: String) async throws -> Credential? {
        try await self.first("SELECT * FROM credentials WHERE serial_number = \(serialNumber)").map(Self.credential)
    }

    public func unusableCredentials() async throws -> [Credential] {
        try await self.rows("SELECT * FROM credentials WHERE status != \(CredentialStatus.active.rawValue) ORDER BY serial_number").map(Self.credential)
    }

    public func revokeCredential(id: String, reason: RevocationReason, at time: Date) async throws -> Bool {
        try await self.transaction { connection in
            guard let row = try await Self.first(connection, "SELECT status FROM credentials WHERE id = \(id) FOR UPDATE") else {
                throw SigilloError(.notFound, "no credential \(id)")
            }
            guard try row.text("status") != CredentialStatus.revoked.rawValue else { return false }
            try await Self.execute(connection, """
                UPDATE credentials SET status = \(CredentialStatus.revoked.rawValue), revocation_reason = \(reason.rawValue), revoked_at = \(Self.seconds(time)),
                       wrapped_key = NULL
                WHERE id = \(id)
                """)
            try await Self.execute(connection, "DELETE FROM sads WHERE credential_id = \(id)")
            return true
        }
    }

    public func credentialsExpiring(before date: Date) async throws -> [Credential] {
        try await self.rows("""
            SELECT * FROM credentials WHERE status IN ('active', 'suspended') AND not_after < \(Self.seconds(date)) ORDER BY not_after, id
            """).map(Self.credential)
    }

    public func setLastReminder(credentialID: String, days: Int) async throws {
        try await self.execute("UPDATE credentials SET last_reminder_days = \(Int64(days)) WHERE id = \(credentialID)")
    }

    public func addRenewedCredential(_ credential: Credential, replacing: String) async throws -> Bool {
        try await self.transaction { connection in
            // The replaced row is locked: two renewals racing take turns, and the second sees the first's replacement.
            guard let row = try await Self.first(connection, "SELECT status FROM credentials WHERE id = \(replacing) FOR UPDATE"),
                  try row.text("status") == CredentialStatus.active.rawValue else { return false }
            guard try await Self.first(connection, "SELECT 1 FROM credentials WHERE replaces = \(replacing)") == nil else { return false }
            try await Self.insert(credential: credential, connection)
            try await Self.execute(connection, "UPDATE credentials SET replaces = \(replacing) WHERE id = \(credential.id)")
            try await Self.execute(connection, """
                UPDATE holders SET state = \(HolderState.active.rawValue) WHERE id = \(credential.holderID)
                    AND state IN (\(HolderState.active.rawValue), \(HolderState.expiring.rawValue))
                """)
            return true
        }
    }
}
