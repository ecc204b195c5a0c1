import SigilloDomain
import Crypto
import Foundation
import GRDB
import PKCS11
import Synchronization

/// The embedded store: SQLite through GRDB, WAL mode, versioned migrations.
///
/// GRDB runs every access on its own dispatch queues (never on the cooperative pool), serialises writes and
/// wraps each `write` in a transaction.
public final class SQLiteStore: Store {
    private let database: DatabasePool
    /// The hot path's writes (SAD consumption, audit) share transactions under load.
    private let groupCommit: GroupCommit
    /// Seals the OTP seeds; nil for a store that only queues mail or reads the audit log (no seed is read or written).
    private let vault: SeedVault?

    /// Opens (creating if needed) the database at `path` and migrates it to the current schema.
    ///
    /// With a `vault`, the first opening records its key check and later ones refuse another key (the database was
    /// sealed with another token's seed key). Without one, seeds can be neither stored nor read.
    public init(path: String, vault: SeedVault?) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // What is deleted or overwritten (a seed in clear, spent SADs and tokens) is zeroed in the file, not left in free space.
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        configuration.busyMode = .timeout(10)
        self.database = try DatabasePool(path: path, configuration: configuration)
        self.groupCommit = GroupCommit(database: self.database)
        self.vault = vault
        let report = MigrationReport()
        try Self.migrator(vault: vault, report: report).migrate(self.database)
        if report.sealedInPlace.withLock({ $0 }) {
            // The clear seeds' old pages leave the write-ahead log too.
            try self.database.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        }
        if let vault {
            try self.database.write { db in
                if let check = try Data.fetchOne(db, sql: "SELECT key_check FROM seed_vault WHERE id = 1") {
                    guard check == Data(vault.keyCheck) else {
                        throw SigilloError(.internalError, "the token's seed key is not the one this database was sealed with: wrong token or database")
                    }
                } else {
                    try db.execute(sql: "INSERT INTO seed_vault (id, key_check) VALUES (1, ?)", arguments: [Data(vault.keyCheck)])
                }
            }
        }
    }

    /// Whether the database at `path` already holds a seed key check: its seed key must then come from the token, not be
    /// made anew in whichever token the server was pointed at. False when there is no database yet.
    public static func isSealed(path: String) throws -> Bool {
        guard FileManager.default.fileExists(atPath: path) else { return false }
        return try DatabaseQueue(path: path).read { db in
            try db.tableExists("seed_vault") && (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM seed_vault") ?? 0) > 0
        }
    }

    /// The vault, for sealing and opening seeds (see `SeedVault`).
    private var requiredVault: SeedVault {
        get throws {
            guard let vault = self.vault else { throw SigilloError(.internalError, "this store was opened without the seed vault") }
            return vault
        }
    }

    /// Seals a seed for the record named by `context`.
    private func seal(_ secret: [UInt8], _ context: String) throws -> Data {
        try self.requiredVault.seal(secret, context: context)
    }

    private func open(_ sealed: Data?, _ context: String) throws -> [UInt8] {
        try self.requiredVault.open(sealed ?? Data(), context: context)
    }

    /// What the migrations did that the opening must finish.
    final class MigrationReport: Sendable {
        /// Seeds written in clear by an earlier version were sealed.
        let sealedInPlace = Mutex(false)
    }

    static func migrator(vault: SeedVault?, report: MigrationReport) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: holders, credentials, OTP, SAD, audit") { db in
            try db.execute(sql: """
                CREATE TABLE holders (
                    id TEXT PRIMARY KEY,
                    username TEXT UNIQUE,
                    given_name TEXT NOT NULL,
                    surname TEXT NOT NULL,
                    fiscal_code TEXT NOT NULL UNIQUE,
                    email TEXT NOT NULL UNIQUE,
                    mobile TEXT NOT NULL UNIQUE,
                    state TEXT NOT NULL,
                    password_hash TEXT,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE invitations (
                    code_hash BLOB PRIMARY KEY,
                    holder_id TEXT NOT NULL REFERENCES holders(id),
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    used_at INTEGER,
                    pending_device_kind TEXT,
                    pending_device_secret BLOB,
                    pending_device_algorithm TEXT,
                    pending_device_digits INTEGER,
                    pending_device_serial TEXT,
                    pending_device_counter INTEGER
                );
                CREATE TABLE otp_devices (
                    id TEXT PRIMARY KEY,
                    holder_id TEXT NOT NULL REFERENCES holders(id),
                    kind TEXT NOT NULL,
                    secret BLOB NOT NULL,
                    algorithm TEXT NOT NULL,
                    digits INTEGER NOT NULL,
                    period INTEGER NOT NULL,
                    counter INTEGER NOT NULL DEFAULT 0,
                    last_step INTEGER NOT NULL DEFAULT 0,
                    serial TEXT UNIQUE,
                    active INTEGER NOT NULL
                );
                CREATE INDEX otp_devices_holder ON otp_devices(holder_id, active);
                CREATE TABLE sms_codes (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    holder_id TEXT NOT NULL REFERENCES holders(id),
                    code_hash BLOB NOT NULL,
                    expires_at INTEGER NOT NULL,
                    used_at INTEGER
                );
                CREATE TABLE credentials (
                    id TEXT PRIMARY KEY,
                    holder_id TEXT NOT NULL REFERENCES holders(id),
                    key_algorithm TEXT NOT NULL,
                    token_key_id TEXT NOT NULL UNIQUE,
                    certificate BLOB NOT NULL,
                    serial_number TEXT NOT NULL UNIQUE,
                    not_before INTEGER NOT NULL,
                    not_after INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    multisign INTEGER NOT NULL,
                    password_failures INTEGER NOT NULL DEFAULT 0,
                    otp_failures INTEGER NOT NULL DEFAULT 0
                );
                CREATE INDEX credentials_holder ON credentials(holder_id);
                CREATE TABLE sads (
                    id_hash BLOB PRIMARY KEY,
                    holder_id TEXT NOT NULL REFERENCES holders(id),
                    credential_id TEXT NOT NULL REFERENCES credentials(id),
                    hash_algorithm TEXT NOT NULL,
                    hashes BLOB NOT NULL,
                    num_signatures INTEGER NOT NULL,
                    used INTEGER NOT NULL DEFAULT 0,
                    expires_at INTEGER NOT NULL
                );
                CREATE INDEX sads_credential ON sads(credential_id);
                CREATE TABLE outbox (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    channel TEXT NOT NULL,
                    recipient TEXT NOT NULL,
                    body TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    sent_at INTEGER
                );
                CREATE TABLE audit_events (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    time INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    action TEXT NOT NULL,
                    target TEXT NOT NULL,
                    outcome TEXT NOT NULL,
                    details TEXT NOT NULL,
                    prev_hash TEXT NOT NULL,
                    hash TEXT NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2: access tokens") { db in
            try db.execute(sql: """
                CREATE TABLE access_tokens (
                    token_hash BLOB PRIMARY KEY,
                    holder_id TEXT NOT NULL REFERENCES holders(id),
                    expires_at INTEGER NOT NULL,
                    revoked INTEGER NOT NULL DEFAULT 0
                );
                CREATE INDEX access_tokens_holder ON access_tokens(holder_id);
                """)
        }
        migrator.registerMigration("v3: revocation reason and time") { db in
            try db.execute(sql: """
                ALTER TABLE credentials ADD COLUMN revocation_reason TEXT;
                ALTER TABLE credentials ADD COLUMN revoked_at INTEGER;
                """)
        }
        migrator.registerMigration("v4: suspension time and CRL numbers") { db in
            try db.execute(sql: """
                ALTER TABLE credentials ADD COLUMN suspended_at INTEGER;
                CREATE INDEX credentials_status ON credentials(status);
                CREATE TABLE crl_state (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    last_number INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v5: user codes") { db in
            try db.execute(sql: """
                ALTER TABLE holders ADD COLUMN user_code_hash TEXT;
                ALTER TABLE holders ADD COLUMN user_code_failures INTEGER NOT NULL DEFAULT 0;
                """)
        }
        migrator.registerMigration("v6: enrolment states, recovery, renewal") { db in
            try db.execute(sql: """
                ALTER TABLE credentials ADD COLUMN last_reminder_days INTEGER;
                ALTER TABLE outbox ADD COLUMN subject TEXT;
                ALTER TABLE credentials ADD COLUMN replaces TEXT;
                CREATE INDEX credentials_not_after ON credentials(not_after);
                CREATE TABLE password_resets (
                    token_hash BLOB PRIMARY KEY,
                    holder_id TEXT NOT NULL REFERENCES holders(id),
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    used_at INTEGER
                );
                CREATE TABLE hardware_tokens (
                    serial TEXT PRIMARY KEY,
                    seed BLOB NOT NULL,
                    digits INTEGER NOT NULL,
                    algorithm TEXT NOT NULL,
                    imported_at INTEGER NOT NULL
                );
                CREATE TABLE device_rebinds (
                    token_hash BLOB PRIMARY KEY,
                    holder_id TEXT NOT NULL REFERENCES holders(id),
                    kind TEXT NOT NULL,
                    secret BLOB NOT NULL,
                    algorithm TEXT NOT NULL,
                    digits INTEGER NOT NULL,
                    serial TEXT,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    used_at INTEGER
                );
                """)
        }
        migrator.registerMigration("v7: mail outbox") { db in
            // Times in milliseconds. `lease_owner`/`lease_until` hold a dispatcher's claim while it sends.
            try db.execute(sql: """
                CREATE TABLE mail_outbox (
                    id TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    recipient TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    body TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at INTEGER NOT NULL,
                    lease_owner TEXT,
                    lease_until INTEGER,
                    last_error TEXT,
                    finished_at INTEGER
                );
                CREATE INDEX mail_outbox_due ON mail_outbox(status, next_attempt_at);
                """)
        }
        migrator.registerMigration("v8: sealed OTP seeds") { db in
            try db.execute(sql: "CREATE TABLE seed_vault (id INTEGER PRIMARY KEY CHECK (id = 1), key_check BLOB NOT NULL)")
            // Seeds written in clear by earlier versions are sealed in place, in this migration's transaction.
            let clear: [(table: String, key: String, contextColumn: String, column: String)] = [
                ("otp_devices", "id", "holder_id", "secret"), ("invitations", "code_hash", "holder_id", "pending_device_secret"),
                ("device_rebinds", "token_hash", "holder_id", "secret"), ("hardware_tokens", "serial", "serial", "seed"),
            ]
            for (table, key, contextColumn, column) in clear {
                let rows = try Row.fetchAll(db, sql: "SELECT \(key) AS k, \(contextColumn) AS c, \(column) AS v FROM \(table) WHERE \(column) IS NOT NULL")
                guard !rows.isEmpty else { continue }
                guard let vault else {
                    throw SigilloError(.internalError, "the database holds OTP seeds in clear: open it once with the token (sigillo serve) to seal them")
                }
                for row in rows {
                    let sealed = try vault.seal([UInt8](row["v"] as Data), context: "\(table)/\(row["c"] as String)")
                    try db.execute(sql: "UPDATE \(table) SET \(column) = ? WHERE \(key) = ?", arguments: [sealed, row["k"] as DatabaseValue])
                }
                report.sealedInPlace.withLock { $0 = true }
            }
        }
        migrator.registerMigration("v9: throttles, mobile changes") { db in
            try db.execute(sql: """
                CREATE TABLE throttle_events (key TEXT NOT NULL, time INTEGER NOT NULL);
                CREATE INDEX throttle_events_key ON throttle_events(key, time);
                CREATE TABLE mobile_changes (
                    holder_id TEXT PRIMARY KEY REFERENCES holders(id),
                    mobile TEXT NOT NULL,
                    code_hash BLOB NOT NULL,
                    expires_at INTEGER NOT NULL
                );
                """)
        }
        return migrator
    }

    // MARK: Holders

    public func createHolder(_ holder: Holder) async throws {
        try await self.write { db in
            try db.execute(
                sql: """
                    INSERT INTO holders (id, username, given_name, surname, fiscal_code, email, mobile, state, password_hash, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [holder.id, holder.username, holder.givenName, holder.surname, holder.fiscalCode, holder.email, holder.mobile,
                            holder.state.rawValue, holder.passwordHash, Self.seconds(holder.createdAt)])
        }
    }

    public func holder(id: String) async throws -> Holder? {
        try await self.database.read { db in try Row.fetchOne(db, sql: "SELECT * FROM holders WHERE id = ?", arguments: [id]).map(Self.holder) }
    }

    public func holder(username: String) async throws -> Holder? {
        try await self.database.read { db in try Row.fetchOne(db, sql: "SELECT * FROM holders WHERE username = ?", arguments: [username]).map(Self.holder) }
    }

    public func holders() async throws -> [Holder] {
        try await self.database.read { db in try Row.fetchAll(db, sql: "SELECT * FROM holders ORDER BY created_at, id").map(Self.holder) }
    }

    public func setHolderState(id: String, state: HolderState) async throws {
        try await self.write { db in
            try db.execute(sql: "UPDATE holders SET state = ? WHERE id = ?", arguments: [state.rawValue, id])
            guard db.changesCount == 1 else { throw SigilloError(.notFound, "no holder \(id)") }
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

    public func setHolderMobile(id: String, mobile: String) async throws {
        try await self.write { db in
            try db.execute(sql: "UPDATE holders SET mobile = ? WHERE id = ?", arguments: [mobile, id])
            guard db.changesCount == 1 else { throw SigilloError(.notFound, "no holder \(id)") }
        }
    }

    public func createInvitation(_ invitation: Invitation) async throws {
        try await self.write { db in
            try db.execute(
                sql: "INSERT INTO invitations (code_hash, holder_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                arguments: [Data(invitation.codeHash), invitation.holderID, Self.seconds(invitation.createdAt), Self.seconds(invitation.expiresAt)])
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

    public func setUserCodeHash(holderID: String, hash: String) async throws {
        try await self.write { db in
            try db.execute(sql: "UPDATE holders SET user_code_hash = ?, user_code_failures = 0 WHERE id = ?", arguments: [hash, holderID])
        }
    }

    public func userCode(holderID: String) async throws -> (hash: String, failures: Int)? {
        try await self.database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT user_code_hash, user_code_failures FROM holders WHERE id = ?", arguments: [holderID]),
                  let hash = row["user_code_hash"] as String? else { return nil }
            return (hash, row["user_code_failures"])
        }
    }

    public func recordUserCodeAttempt(holderID: String, success: Bool) async throws -> Int {
        try await self.write { db in
            if success {
                try db.execute(sql: "UPDATE holders SET user_code_failures = 0 WHERE id = ?", arguments: [holderID])
                return 0
            }
            try db.execute(sql: "UPDATE holders SET user_code_failures = user_code_failures + 1 WHERE id = ?", arguments: [holderID])
            return try Int.fetchOne(db, sql: "SELECT user_code_failures FROM holders WHERE id = ?", arguments: [holderID]) ?? 0
        }
    }

    // MARK: Credentials

    public func credential(id: String) async throws -> Credential? {
        try await self.database.read { db in try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM credentials WHERE id = ?"), arguments: [id]).map(Self.credential) }
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

    public func revokeCredential(id: String, reason: RevocationReason, at time: Date) async throws -> Bool {
        try await self.write { db in
            guard let status = try String.fetchOne(db, sql: "SELECT status FROM credentials WHERE id = ?", arguments: [id]) else {
                throw SigilloError(.notFound, "no credential \(id)")
            }
            guard status != CredentialStatus.revoked.rawValue else { return false }
            try db.execute(
                sql: "UPDATE credentials SET status = ?, revocation_reason = ?, revoked_at = ? WHERE id = ?",
                arguments: [CredentialStatus.revoked.rawValue, reason.rawValue, Self.seconds(time), id])
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

    public func nextCRLNumber() async throws -> Int64 {
        try await self.write { db in
            try db.execute(sql: """
                INSERT INTO crl_state (id, last_number) VALUES (1, 1)
                ON CONFLICT (id) DO UPDATE SET last_number = last_number + 1
                """)
            return try Int64.fetchOne(db, sql: "SELECT last_number FROM crl_state WHERE id = 1") ?? 1
        }
    }

    public func recordFailure(credentialID: String, kind: FailureKind) async throws -> Int {
        let column = kind == .password ? "password_failures" : "otp_failures"
        return try await self.write { db in
            try db.execute(sql: "UPDATE credentials SET \(column) = \(column) + 1 WHERE id = ?", arguments: [credentialID])
            return try Int.fetchOne(db, sql: "SELECT \(column) FROM credentials WHERE id = ?", arguments: [credentialID]) ?? 0
        }
    }

    public func resetFailures(credentialID: String) async throws {
        try await self.write { db in
            try db.execute(sql: "UPDATE credentials SET password_failures = 0, otp_failures = 0 WHERE id = ?", arguments: [credentialID])
        }
    }

    // MARK: OTP

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

    // MARK: SADs

    public func insertSAD(_ sad: SADRecord) async throws {
        try await self.write { db in
            try db.execute(
                sql: "INSERT INTO sads (id_hash, holder_id, credential_id, hash_algorithm, hashes, num_signatures, used, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [Data(sad.idHash), sad.holderID, sad.credentialID, sad.hashAlgorithm.rawValue, Data(sad.hashes.joined()), sad.numSignatures, sad.used,
                            Self.milliseconds(sad.expiresAt)])
        }
    }

    public func sad(idHash: [UInt8]) async throws -> SADRecord? {
        try await self.database.read { db in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM sads WHERE id_hash = ?"), arguments: [Data(idHash)]) else { return nil }
            guard let algorithm = HashAlgorithm(rawValue: row["hash_algorithm"]) else { return nil }
            let blob = [UInt8](row["hashes"] as Data)
            let hashes = stride(from: 0, to: blob.count, by: algorithm.digestLength).map { Array(blob[$0..<min($0 + algorithm.digestLength, blob.count)]) }
            return SADRecord(
                idHash: idHash, holderID: row["holder_id"], credentialID: row["credential_id"], hashAlgorithm: algorithm, hashes: hashes,
                numSignatures: row["num_signatures"], used: row["used"], expiresAt: Date(timeIntervalSince1970: Double(row["expires_at"] as Int64) / 1000))
        }
    }

    public func consumeSAD(idHash: [UInt8], count: Int, now: Date) async throws -> Bool {
        // One conditional UPDATE: two requests racing for the last signatures cannot both pass.
        try await self.groupCommit.write { db in
            try db.cachedStatement(sql: "UPDATE sads SET used = used + ? WHERE id_hash = ? AND used + ? <= num_signatures AND expires_at > ?")
                .execute(arguments: [count, Data(idHash), count, Self.milliseconds(now)])
            return db.changesCount == 1
        }
    }

    public func refundSAD(idHash: [UInt8], count: Int) async throws {
        try await self.write { db in
            try db.execute(sql: "UPDATE sads SET used = MAX(used - ?, 0) WHERE id_hash = ?", arguments: [count, Data(idHash)])
        }
    }

    public func extendSAD(idHash: [UInt8], expiresAt: Date, now: Date) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE sads SET expires_at = ? WHERE id_hash = ? AND expires_at > ? AND used < num_signatures",
                arguments: [Self.milliseconds(expiresAt), Data(idHash), Self.milliseconds(now)])
            return db.changesCount == 1
        }
    }

    public func deleteSADs(credentialID: String) async throws {
        try await self.write { db in try db.execute(sql: "DELETE FROM sads WHERE credential_id = ?", arguments: [credentialID]) }
    }

    // MARK: Access tokens

    public func createAccessToken(tokenHash: [UInt8], holderID: String, expiresAt: Date) async throws {
        try await self.write { db in
            try db.execute(sql: "INSERT INTO access_tokens (token_hash, holder_id, expires_at) VALUES (?, ?, ?)",
                           arguments: [Data(tokenHash), holderID, Self.seconds(expiresAt)])
        }
    }

    public func accessToken(tokenHash: [UInt8]) async throws -> (holderID: String, expiresAt: Date)? {
        try await self.database.read { db in
            guard let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT holder_id, expires_at FROM access_tokens WHERE token_hash = ? AND revoked = 0"), arguments: [Data(tokenHash)]) else {
                return nil
            }
            return (row["holder_id"], Self.date(row["expires_at"]))
        }
    }

    public func revokeAccessToken(tokenHash: [UInt8]) async throws {
        try await self.write { db in try db.execute(sql: "UPDATE access_tokens SET revoked = 1 WHERE token_hash = ?", arguments: [Data(tokenHash)]) }
    }

    public func revokeAccessTokens(holderID: String) async throws {
        try await self.write { db in try db.execute(sql: "UPDATE access_tokens SET revoked = 1 WHERE holder_id = ?", arguments: [holderID]) }
    }

    // MARK: Outbox

    public func enqueueMessage(_ message: OutgoingMessage) async throws {
        try await self.write { db in
            try db.execute(
                sql: "INSERT INTO outbox (channel, recipient, subject, body, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [message.channel, message.recipient, message.subject, message.body, Self.seconds(message.createdAt)])
        }
    }

    public func pendingMessages() async throws -> [OutgoingMessage] {
        try await self.database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE sent_at IS NULL ORDER BY id").map {
                OutgoingMessage(channel: $0["channel"], recipient: $0["recipient"], subject: $0["subject"], body: $0["body"], createdAt: Self.date($0["created_at"]))
            }
        }
    }

    // MARK: Mail outbox

    public func enqueueMail(_ mail: QueuedMail) async throws {
        try await self.write { db in
            try db.execute(
                sql: """
                    INSERT INTO mail_outbox (id, kind, recipient, subject, body, created_at, status, attempts, next_attempt_at, last_error, finished_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [mail.id, mail.kind, mail.recipient, mail.subject, mail.body, Self.milliseconds(mail.createdAt), mail.status.rawValue,
                            mail.attempts, Self.milliseconds(mail.nextAttemptAt), mail.lastError, mail.finishedAt.map(Self.milliseconds)])
        }
    }

    public func claimDueMails(now: Date, owner: String, leaseUntil: Date, limit: Int) async throws -> [QueuedMail] {
        let nowMS = Self.milliseconds(now)
        return try await self.write { db in
            // One write transaction: the SELECT and the UPDATE see the same rows, and the UPDATE re-checks each row's state.
            let due = """
                ((status = 'pending' AND next_attempt_at <= ?) OR (status = 'sending' AND lease_until <= ?))
                """
            let ids = try String.fetchAll(
                db, sql: "SELECT id FROM mail_outbox WHERE \(due) ORDER BY next_attempt_at, rowid LIMIT ?", arguments: [nowMS, nowMS, max(0, limit)])
            var claimed: [QueuedMail] = []
            for id in ids {
                try db.execute(
                    sql: "UPDATE mail_outbox SET status = 'sending', lease_owner = ?, lease_until = ?, attempts = attempts + 1 WHERE id = ? AND \(due)",
                    arguments: [owner, Self.milliseconds(leaseUntil), id, nowMS, nowMS])
                guard db.changesCount == 1, let row = try Row.fetchOne(db, sql: "SELECT * FROM mail_outbox WHERE id = ?", arguments: [id]) else { continue }
                claimed.append(Self.mail(row))
            }
            return claimed
        }
    }

    public func markMailSent(id: String, owner: String, at time: Date) async throws -> Bool {
        try await self.finishMailClaim(id: id, owner: owner, set: "status = 'sent', finished_at = ?, last_error = NULL", arguments: [Self.milliseconds(time)])
    }

    public func markMailRetry(id: String, owner: String, nextAttempt: Date, error: String) async throws -> Bool {
        try await self.finishMailClaim(id: id, owner: owner, set: "status = 'pending', next_attempt_at = ?, last_error = ?",
                                       arguments: [Self.milliseconds(nextAttempt), error])
    }

    public func markMailFailed(id: String, owner: String, at time: Date, error: String) async throws -> Bool {
        try await self.finishMailClaim(id: id, owner: owner, set: "status = 'failed', finished_at = ?, last_error = ?", arguments: [Self.milliseconds(time), error])
    }

    /// Ends `owner`'s claim on a mail with `set` (compare-and-set on owner and status).
    private func finishMailClaim(id: String, owner: String, set: String, arguments: StatementArguments) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE mail_outbox SET \(set), lease_owner = NULL, lease_until = NULL WHERE id = ? AND status = 'sending' AND lease_owner = ?",
                arguments: arguments + [id, owner])
            return db.changesCount == 1
        }
    }

    public func nextMailDue() async throws -> Date? {
        try await self.database.read { db in
            try Int64.fetchOne(db, sql: """
                SELECT MIN(due) FROM (
                    SELECT MIN(next_attempt_at) AS due FROM mail_outbox WHERE status = 'pending'
                    UNION ALL SELECT MIN(lease_until) FROM mail_outbox WHERE status = 'sending')
                """).map(Self.millisecondDate)
        }
    }

    public func mails() async throws -> [QueuedMail] {
        try await self.database.read { db in try Row.fetchAll(db, sql: "SELECT * FROM mail_outbox ORDER BY created_at, rowid").map(Self.mail) }
    }

    private static func mail(_ row: Row) -> QueuedMail {
        QueuedMail(
            id: row["id"], kind: row["kind"], recipient: row["recipient"], subject: row["subject"], body: row["body"],
            createdAt: self.millisecondDate(row["created_at"]), status: QueuedMail.Status(rawValue: row["status"]) ?? .pending,
            attempts: row["attempts"], nextAttemptAt: self.millisecondDate(row["next_attempt_at"]), lastError: row["last_error"],
            finishedAt: (row["finished_at"] as Int64?).map(Self.millisecondDate))
    }

    // MARK: Audit

    public func audit(_ event: AuditEvent, at time: Date) async throws {
        // Group commit keeps the chain: the writes of a shared transaction run one after the other.
        try await self.groupCommit.write { db in
            let previous = try String.fetchOne(db.cachedStatement(sql: "SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1")) ?? AuditChain.genesis
            let seconds = Self.seconds(time)
            let hash = AuditChain.hash(previous: previous, time: seconds, event: event)
            try db.cachedStatement(sql: "INSERT INTO audit_events (time, actor, action, target, outcome, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .execute(arguments: [seconds, event.actor, event.action, event.target, event.outcome, event.details, previous, hash])
        }
    }

    public func auditRecords() async throws -> [AuditRecord] {
        try await self.database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit_events ORDER BY seq").map { row in
                AuditRecord(
                    sequence: row["seq"], time: Self.date(row["time"]),
                    event: AuditEvent(actor: row["actor"], action: row["action"], target: row["target"], outcome: row["outcome"], details: row["details"]),
                    previousHash: row["prev_hash"], hash: row["hash"])
            }
        }
    }

    public func auditSequenceHighWater() async throws -> Int64? {
        try await self.database.read { db in
            try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'")
        }
    }

    // MARK: Lifecycle

    public func transitionHolder(id: String, from: Set<HolderState>, to: HolderState) async throws -> Bool {
        try await self.write { db in
            let states = from.map(\.rawValue)
            let marks = Array(repeating: "?", count: states.count).joined(separator: ", ")
            try db.execute(sql: "UPDATE holders SET state = ? WHERE id = ? AND state IN (\(marks))",
                           arguments: StatementArguments([to.rawValue, id] + states))
            return db.changesCount == 1
        }
    }

    public func holder(email: String) async throws -> Holder? {
        try await self.database.read { db in try Row.fetchOne(db, sql: "SELECT * FROM holders WHERE email = ?", arguments: [email]).map(Self.holder) }
    }

    public func holder(mobile: String) async throws -> Holder? {
        try await self.database.read { db in try Row.fetchOne(db, sql: "SELECT * FROM holders WHERE mobile = ?", arguments: [mobile]).map(Self.holder) }
    }

    public func createPasswordReset(tokenHash: [UInt8], holderID: String, createdAt: Date, expiresAt: Date) async throws {
        try await self.write { db in
            try db.execute(sql: "INSERT INTO password_resets (token_hash, holder_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                           arguments: [Data(tokenHash), holderID, Self.seconds(createdAt), Self.seconds(expiresAt)])
        }
    }

    public func admit(throttle key: String, now: Date, window: TimeInterval, limit: Int, count: Int) async throws -> Bool {
        try await self.write { db in
            let since = Self.milliseconds(now.addingTimeInterval(-window))
            try db.execute(sql: "DELETE FROM throttle_events WHERE key = ? AND time < ?", arguments: [key, since])
            let counted = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM throttle_events WHERE key = ?", arguments: [key]) ?? 0
            guard counted + count <= limit else { return false }
            for _ in 0..<count {
                try db.execute(sql: "INSERT INTO throttle_events (key, time) VALUES (?, ?)", arguments: [key, Self.milliseconds(now)])
            }
            return true
        }
    }

    public func passwordReset(tokenHash: [UInt8]) async throws -> (holderID: String, expiresAt: Date, usedAt: Date?)? {
        try await self.database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM password_resets WHERE token_hash = ?", arguments: [Data(tokenHash)]) else { return nil }
            return (row["holder_id"], Self.date(row["expires_at"]), (row["used_at"] as Int64?).map(Self.date))
        }
    }

    public func completePasswordReset(tokenHash: [UInt8], passwordHash: String, now: Date) async throws -> String? {
        try await self.write { db in
            guard let holderID = try String.fetchOne(db, sql: "SELECT holder_id FROM password_resets WHERE token_hash = ?", arguments: [Data(tokenHash)]) else { return nil }
            try db.execute(sql: "UPDATE password_resets SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
                           arguments: [Self.seconds(now), Data(tokenHash), Self.seconds(now)])
            guard db.changesCount == 1 else { return nil }
            // Every other outstanding reset link of the holder dies too.
            try db.execute(sql: "UPDATE password_resets SET used_at = ? WHERE holder_id = ? AND used_at IS NULL", arguments: [Self.seconds(now), holderID])
            try db.execute(sql: "UPDATE holders SET password_hash = ? WHERE id = ?", arguments: [passwordHash, holderID])
            try db.execute(sql: "UPDATE access_tokens SET revoked = 1 WHERE holder_id = ?", arguments: [holderID])
            try db.execute(sql: "DELETE FROM sads WHERE holder_id = ?", arguments: [holderID])
            try db.execute(sql: "UPDATE credentials SET password_failures = 0 WHERE holder_id = ?", arguments: [holderID])
            return holderID
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
            try Self.insert(credential: credential, db: db)
            try db.execute(sql: "UPDATE credentials SET replaces = ? WHERE id = ?", arguments: [replacing, credential.id])
            try db.execute(sql: "UPDATE holders SET state = ? WHERE id = ? AND state IN (?, ?)",
                           arguments: [HolderState.active.rawValue, credential.holderID, HolderState.active.rawValue, HolderState.expiring.rawValue])
            return true
        }
    }

    // MARK: Helpers

    /// Runs `body` in a write transaction, turning constraint violations into clear `conflict` errors.
    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await self.database.write(body)
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE || error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY {
            let message = error.message ?? ""
            let field = ["email", "mobile", "fiscal_code", "username", "serial", "token_key_id", "id"].first { message.contains(".\($0)") } ?? "record"
            throw SigilloError(.conflict, "\(field.replacingOccurrences(of: "_", with: " ")) already belongs to another record")
        }
    }

    private static func insert(device: OTPDevice, sealedSecret: Data, db: Database) throws {
        try db.execute(
            sql: "INSERT INTO otp_devices (id, holder_id, kind, secret, algorithm, digits, period, counter, last_step, serial, active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            arguments: [device.id, device.holderID, device.kind.rawValue, sealedSecret, device.algorithm.rawValue, device.digits, device.period,
                        Int64(device.counter), Int64(device.lastStep), device.serial, device.active])
    }

    private static func insert(credential: Credential, db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO credentials (id, holder_id, key_algorithm, token_key_id, certificate, serial_number, not_before, not_after, status, multisign,
                    password_failures, otp_failures) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [credential.id, credential.holderID, credential.keyAlgorithm.rawValue, credential.tokenKeyID, Data(credential.certificateDER),
                        credential.serialNumber, Self.seconds(credential.notBefore), Self.seconds(credential.notAfter), credential.status.rawValue,
                        credential.multisign, credential.passwordFailures, credential.otpFailures])
    }

    private static func holder(_ row: Row) -> Holder {
        Holder(
            id: row["id"], username: row["username"], givenName: row["given_name"], surname: row["surname"], fiscalCode: row["fiscal_code"],
            email: row["email"], mobile: row["mobile"], state: HolderState(rawValue: row["state"]) ?? .created, passwordHash: row["password_hash"],
            createdAt: self.date(row["created_at"]))
    }

    private static func credential(_ row: Row) -> Credential {
        Credential(
            id: row["id"], holderID: row["holder_id"], keyAlgorithm: KeyAlgorithm(rawValue: row["key_algorithm"]) ?? .ecP256, tokenKeyID: row["token_key_id"],
            certificateDER: [UInt8](row["certificate"] as Data), serialNumber: row["serial_number"], notBefore: self.date(row["not_before"]),
            notAfter: self.date(row["not_after"]), status: CredentialStatus(rawValue: row["status"]) ?? .suspended, multisign: row["multisign"],
            passwordFailures: row["password_failures"], otpFailures: row["otp_failures"],
            revocationReason: (row["revocation_reason"] as String?).flatMap(RevocationReason.init(rawValue:)),
            revokedAt: (row["revoked_at"] as Int64?).map(Self.date),
            suspendedAt: (row["suspended_at"] as Int64?).map(Self.date),
            lastReminderDays: row["last_reminder_days"])
    }

    private func device(_ row: Row) throws -> OTPDevice {
        OTPDevice(
            id: row["id"], holderID: row["holder_id"], kind: OTPKind(rawValue: row["kind"]) ?? .totp,
            secret: try self.open(row["secret"], "otp_devices/\(row["holder_id"] as String)"),
            algorithm: OTPAlgorithm(rawValue: row["algorithm"]) ?? .sha1, digits: row["digits"], period: row["period"],
            counter: UInt64(row["counter"] as Int64), lastStep: UInt64(row["last_step"] as Int64), serial: row["serial"], active: row["active"])
    }

    static func seconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }
    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }
    static func date(_ seconds: Int64) -> Date { Date(timeIntervalSince1970: Double(seconds)) }
    static func millisecondDate(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}
