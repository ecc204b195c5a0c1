import Foundation
import GRDB
import SigilloDomain
import Synchronization

/// The schema, version by version. A migration once shipped never changes: a new version adds to it.
extension SQLiteStore {
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
        // Issue 11 (sole control under attack): one migration per part, in this order. Each part replaces its own
        // placeholder line below with `migrator.registerMigration("vNN: …") { … }` (or deletes it if it needs none).
        migrator.registerMigration("v10: secret attempts per holder, SMS code purpose and tries, SAD authorization time") { db in
            // The lock belongs to the holder's secrets, not to a credential: one row per holder and secret, counted
            // before each check. The counts of the credentials' old columns move over (the highest per holder).
            try db.execute(sql: """
                CREATE TABLE secret_attempts (
                    holder_id TEXT NOT NULL REFERENCES holders(id),
                    secret TEXT NOT NULL,
                    failures INTEGER NOT NULL,
                    inflight INTEGER NOT NULL DEFAULT 0,
                    inflight_until INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (holder_id, secret)
                ) WITHOUT ROWID;
                INSERT INTO secret_attempts (holder_id, secret, failures)
                    SELECT holder_id, 'password', MAX(password_failures) FROM credentials WHERE status != 'revoked'
                    GROUP BY holder_id HAVING MAX(password_failures) > 0;
                INSERT INTO secret_attempts (holder_id, secret, failures)
                    SELECT holder_id, 'otp', MAX(otp_failures) FROM credentials WHERE status != 'revoked'
                    GROUP BY holder_id HAVING MAX(otp_failures) > 0;
                INSERT INTO secret_attempts (holder_id, secret, failures)
                    SELECT id, 'user_code', user_code_failures FROM holders WHERE user_code_failures > 0;
                ALTER TABLE credentials DROP COLUMN password_failures;
                ALTER TABLE credentials DROP COLUMN otp_failures;
                ALTER TABLE holders DROP COLUMN user_code_failures;
                DELETE FROM sms_codes;
                ALTER TABLE sms_codes ADD COLUMN purpose TEXT NOT NULL DEFAULT 'signature';
                ALTER TABLE sms_codes ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
                DELETE FROM mobile_changes;
                ALTER TABLE mobile_changes ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE sads ADD COLUMN authorized_at INTEGER NOT NULL DEFAULT 0;
                UPDATE sads SET authorized_at = expires_at;
                CREATE TABLE device_rebind_requests (
                    token_hash BLOB PRIMARY KEY,
                    holder_id TEXT NOT NULL REFERENCES holders(id),
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    used_at INTEGER
                );
                """)
        }
        migrator.registerMigration("v11: re-enrolment") { db in
            // A holder closed for good (`revoked`: no way back) no longer holds its fiscal code, email or mobile number, so
            // the same person can be ordered again while the old row, its credentials and audit stay as history. SQLite
            // cannot drop a column's UNIQUE, so the table is rebuilt (the documented 12-step way: GRDB runs this with
            // foreign keys off and checks them before commit) from its own schema text, so every column added by any
            // earlier migration is kept, and the three constraints become unique indexes over open holders only.
            // Usernames stay unique over every holder, closed ones included: a name is never handed to another account.
            guard let schema = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'holders'") else {
                throw SigilloError(.internalError, "the holders table is missing")
            }
            var rebuilt = schema
            for (old, new) in [("CREATE TABLE holders (", "CREATE TABLE holders_v11 ("), ("fiscal_code TEXT NOT NULL UNIQUE", "fiscal_code TEXT NOT NULL"),
                               ("email TEXT NOT NULL UNIQUE", "email TEXT NOT NULL"), ("mobile TEXT NOT NULL UNIQUE", "mobile TEXT NOT NULL")] {
                guard rebuilt.components(separatedBy: old).count == 2 else { throw SigilloError(.internalError, "unexpected holders schema near '\(old)'") }
                rebuilt = rebuilt.replacingOccurrences(of: old, with: new)
            }
            let others = try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE tbl_name = 'holders' AND type IN ('index', 'trigger') AND sql IS NOT NULL")
            try db.execute(sql: rebuilt)
            try db.execute(sql: "INSERT INTO holders_v11 SELECT * FROM holders")
            try db.execute(sql: "DROP TABLE holders")
            try db.execute(sql: "ALTER TABLE holders_v11 RENAME TO holders")
            for sql in others { try db.execute(sql: sql) }
            try db.execute(sql: """
                CREATE UNIQUE INDEX holders_open_fiscal_code ON holders(fiscal_code) WHERE state != 'revoked';
                CREATE UNIQUE INDEX holders_open_email ON holders(email) WHERE state != 'revoked';
                CREATE UNIQUE INDEX holders_open_mobile ON holders(mobile) WHERE state != 'revoked';
                """)
        }
        migrator.registerMigration("v12: audit checkpoints") { db in
            // Finds the latest checkpoint without scanning the log; only checkpoint rows are indexed, so the other
            // appends (signHash's among them) pay nothing for it.
            try db.execute(sql: "CREATE INDEX audit_events_checkpoints ON audit_events(seq) WHERE action = 'audit.checkpoint'")
        }
        migrator.registerMigration("v13: secrets at rest") { db in
            // Mail bodies (activation and reset links) are sealed while they wait and deleted once sent or given up
            // (`SQLiteStore+MailOutboxStore.swift`); the opening with the vault seals what waits in clear. The development
            // SMS outbox kept every text, codes included, in clear: it goes, and SMS are in the development file alone.
            try db.execute(sql: """
                ALTER TABLE mail_outbox ADD COLUMN sealed_body BLOB;
                UPDATE mail_outbox SET body = '' WHERE status IN ('sent', 'failed');
                DROP TABLE outbox;
                """)
            // The clear pages (zeroed in the file by `secure_delete`) are checkpointed out of the write-ahead log.
            report.sealedInPlace.withLock { $0 = true }
        }
        migrator.registerMigration("v14: throttle expiry") { db in
            // Each throttle event knows when it stops counting, so events of keys never seen again can be purged.
            try db.execute(sql: """
                ALTER TABLE throttle_events ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
                UPDATE throttle_events SET expires_at = time + 86400000;
                CREATE INDEX throttle_events_expiry ON throttle_events(expires_at);
                """)
        }
        migrator.registerMigration("v15: wrapped holder keys") { db in
            // Issue 13: the holder's private key wrapped under the token's KEK (bound to the credential by a MAC made in
            // the token) and its public key; NULL for keys kept as token objects, and the blob deleted at revocation.
            try db.execute(sql: """
                ALTER TABLE credentials ADD COLUMN wrapped_key BLOB;
                ALTER TABLE credentials ADD COLUMN public_key BLOB;
                """)
        }
        migrator.registerMigration("v16: OAuth2 authorization server") { db in
            // Issue 15: registered clients (secret as a digest), pushed requests, pages and codes under the digest of
            // their identifiers (single use: `used`; a replayed code finds the token it gave in `token_hash`), and the
            // client a token was issued to (a credential-scoped token is a SAD row).
            try db.execute(sql: """
                CREATE TABLE oauth_clients (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    secret_hash BLOB,
                    public_key TEXT,
                    redirect_uris TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE oauth_grants (
                    id_hash BLOB PRIMARY KEY,
                    kind TEXT NOT NULL,
                    client_id TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    expires_at INTEGER NOT NULL,
                    used INTEGER NOT NULL DEFAULT 0,
                    token_hash BLOB
                );
                CREATE INDEX oauth_grants_expiry ON oauth_grants(expires_at);
                CREATE INDEX oauth_grants_client ON oauth_grants(client_id);
                ALTER TABLE sads ADD COLUMN client_id TEXT;
                ALTER TABLE access_tokens ADD COLUMN client_id TEXT;
                CREATE INDEX sads_client ON sads(client_id) WHERE client_id IS NOT NULL;
                CREATE INDEX access_tokens_client ON access_tokens(client_id) WHERE client_id IS NOT NULL;
                """)
        }
        migrator.registerMigration("v17: credential row version") { db in
            // Issue 16: signHash keeps credentials in memory and checks, in the statement that spends the SAD, that the
            // row is still at the version it read. Every update of a row moves its version on (the trigger: no store
            // method can forget it); the guard keeps the trigger's own update from firing it again.
            try db.execute(sql: """
                ALTER TABLE credentials ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
                CREATE TRIGGER credentials_version AFTER UPDATE ON credentials FOR EACH ROW WHEN NEW.version = OLD.version
                BEGIN
                    UPDATE credentials SET version = OLD.version + 1 WHERE id = OLD.id;
                END;
                """)
        }
        return migrator
    }
}
