import Foundation
import PostgresNIO
import SigilloDomain

/// The schema, version by version, as in the SQLite store: a version once shipped never changes; a new one adds to it.
/// `schema_migrations` records what ran. Nodes starting together migrate one at a time (an advisory lock), and a
/// database migrated by a newer binary is refused rather than written with an older idea of its tables.
///
/// Version 1 is the SQLite schema as of its v14 (the first PostgreSQL release), with PostgreSQL's types: `BIGINT`
/// times (seconds, or milliseconds where the SQLite store keeps milliseconds), `BYTEA` blobs, `BOOLEAN` flags.
extension PostgresStore {
    struct Migration: Sendable {
        let version: Int
        let name: String
        let sql: [String]
    }

    /// The advisory lock key of migrations (any constant shared by every node).
    static let migrationLock: Int64 = 0x5167_1110_0001

    static let migrations: [Migration] = [
        Migration(version: 1, name: "the SQLite schema v14", sql: [
            """
            CREATE TABLE holders (
                id TEXT PRIMARY KEY,
                username TEXT UNIQUE,
                given_name TEXT NOT NULL,
                surname TEXT NOT NULL,
                fiscal_code TEXT NOT NULL,
                email TEXT NOT NULL,
                mobile TEXT NOT NULL,
                state TEXT NOT NULL,
                password_hash TEXT,
                created_at BIGINT NOT NULL,
                user_code_hash TEXT
            )
            """,
            // A holder closed for good (`revoked`) gives up its fiscal code, email and mobile number (re-enrolment).
            "CREATE UNIQUE INDEX holders_open_fiscal_code ON holders(fiscal_code) WHERE state != 'revoked'",
            "CREATE UNIQUE INDEX holders_open_email ON holders(email) WHERE state != 'revoked'",
            "CREATE UNIQUE INDEX holders_open_mobile ON holders(mobile) WHERE state != 'revoked'",
            """
            CREATE TABLE invitations (
                code_hash BYTEA PRIMARY KEY,
                holder_id TEXT NOT NULL REFERENCES holders(id),
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                used_at BIGINT,
                pending_device_kind TEXT,
                pending_device_secret BYTEA,
                pending_device_algorithm TEXT,
                pending_device_digits BIGINT,
                pending_device_serial TEXT,
                pending_device_counter BIGINT
            )
            """,
            "CREATE INDEX invitations_holder ON invitations(holder_id)",
            """
            CREATE TABLE otp_devices (
                id TEXT PRIMARY KEY,
                holder_id TEXT NOT NULL REFERENCES holders(id),
                kind TEXT NOT NULL,
                secret BYTEA NOT NULL,
                algorithm TEXT NOT NULL,
                digits BIGINT NOT NULL,
                period BIGINT NOT NULL,
                counter BIGINT NOT NULL DEFAULT 0,
                last_step BIGINT NOT NULL DEFAULT 0,
                serial TEXT UNIQUE,
                active BOOLEAN NOT NULL
            )
            """,
            "CREATE INDEX otp_devices_holder ON otp_devices(holder_id, active)",
            """
            CREATE TABLE sms_codes (
                id BIGSERIAL PRIMARY KEY,
                holder_id TEXT NOT NULL REFERENCES holders(id),
                code_hash BYTEA NOT NULL,
                expires_at BIGINT NOT NULL,
                used_at BIGINT,
                purpose TEXT NOT NULL DEFAULT 'signature',
                failures BIGINT NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX sms_codes_holder ON sms_codes(holder_id, purpose)",
            """
            CREATE TABLE credentials (
                id TEXT PRIMARY KEY,
                holder_id TEXT NOT NULL REFERENCES holders(id),
                key_algorithm TEXT NOT NULL,
                token_key_id TEXT NOT NULL UNIQUE,
                certificate BYTEA NOT NULL,
                serial_number TEXT NOT NULL UNIQUE,
                not_before BIGINT NOT NULL,
                not_after BIGINT NOT NULL,
                status TEXT NOT NULL,
                multisign BIGINT NOT NULL,
                revocation_reason TEXT,
                revoked_at BIGINT,
                suspended_at BIGINT,
                last_reminder_days BIGINT,
                replaces TEXT
            )
            """,
            "CREATE INDEX credentials_holder ON credentials(holder_id)",
            "CREATE INDEX credentials_status ON credentials(status)",
            "CREATE INDEX credentials_not_after ON credentials(not_after)",
            "CREATE INDEX credentials_replaces ON credentials(replaces)",
            """
            CREATE TABLE sads (
                id_hash BYTEA PRIMARY KEY,
                holder_id TEXT NOT NULL REFERENCES holders(id),
                credential_id TEXT NOT NULL REFERENCES credentials(id),
                hash_algorithm TEXT NOT NULL,
                hashes BYTEA NOT NULL,
                num_signatures BIGINT NOT NULL,
                used BIGINT NOT NULL DEFAULT 0,
                expires_at BIGINT NOT NULL,
                authorized_at BIGINT NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX sads_credential ON sads(credential_id)",
            "CREATE INDEX sads_holder ON sads(holder_id)",
            """
            CREATE TABLE audit_events (
                seq BIGINT PRIMARY KEY,
                time BIGINT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                outcome TEXT NOT NULL,
                details TEXT NOT NULL,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL
            )
            """,
            "CREATE INDEX audit_events_checkpoints ON audit_events(seq) WHERE action = 'audit.checkpoint'",
            // The chain's head: every append locks this row, so appends from every node form one chain; `last_seq` is the
            // highest sequence ever handed out (SQLite's `sqlite_sequence`), kept in the same transaction as the rows.
            "CREATE TABLE audit_state (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq BIGINT NOT NULL, head_hash TEXT NOT NULL)",
            """
            CREATE TABLE access_tokens (
                token_hash BYTEA PRIMARY KEY,
                holder_id TEXT NOT NULL REFERENCES holders(id),
                expires_at BIGINT NOT NULL,
                revoked BOOLEAN NOT NULL DEFAULT FALSE
            )
            """,
            "CREATE INDEX access_tokens_holder ON access_tokens(holder_id)",
            "CREATE TABLE crl_state (id INTEGER PRIMARY KEY CHECK (id = 1), last_number BIGINT NOT NULL)",
            """
            CREATE TABLE password_resets (
                token_hash BYTEA PRIMARY KEY,
                holder_id TEXT NOT NULL REFERENCES holders(id),
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                used_at BIGINT
            )
            """,
            "CREATE INDEX password_resets_holder ON password_resets(holder_id)",
            """
            CREATE TABLE hardware_tokens (
                serial TEXT PRIMARY KEY,
                seed BYTEA NOT NULL,
                digits BIGINT NOT NULL,
                algorithm TEXT NOT NULL,
                imported_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE device_rebinds (
                token_hash BYTEA PRIMARY KEY,
                holder_id TEXT NOT NULL REFERENCES holders(id),
                kind TEXT NOT NULL,
                secret BYTEA NOT NULL,
                algorithm TEXT NOT NULL,
                digits BIGINT NOT NULL,
                serial TEXT,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                used_at BIGINT
            )
            """,
            "CREATE INDEX device_rebinds_holder ON device_rebinds(holder_id)",
            """
            CREATE TABLE mail_outbox (
                ord BIGSERIAL UNIQUE,
                id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                recipient TEXT NOT NULL,
                subject TEXT NOT NULL,
                body TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                status TEXT NOT NULL,
                attempts BIGINT NOT NULL DEFAULT 0,
                next_attempt_at BIGINT NOT NULL,
                lease_owner TEXT,
                lease_until BIGINT,
                last_error TEXT,
                finished_at BIGINT,
                sealed_body BYTEA
            )
            """,
            "CREATE INDEX mail_outbox_due ON mail_outbox(status, next_attempt_at)",
            "CREATE TABLE seed_vault (id INTEGER PRIMARY KEY CHECK (id = 1), key_check BYTEA NOT NULL)",
            """
            CREATE TABLE throttle_events (
                key TEXT NOT NULL,
                time BIGINT NOT NULL,
                expires_at BIGINT NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX throttle_events_key ON throttle_events(key, time)",
            "CREATE INDEX throttle_events_expiry ON throttle_events(expires_at)",
            """
            CREATE TABLE mobile_changes (
                holder_id TEXT PRIMARY KEY REFERENCES holders(id),
                mobile TEXT NOT NULL,
                code_hash BYTEA NOT NULL,
                expires_at BIGINT NOT NULL,
                failures BIGINT NOT NULL DEFAULT 0
            )
            """,
            """
            CREATE TABLE secret_attempts (
                holder_id TEXT NOT NULL REFERENCES holders(id),
                secret TEXT NOT NULL,
                failures BIGINT NOT NULL,
                inflight BIGINT NOT NULL DEFAULT 0,
                inflight_until BIGINT NOT NULL DEFAULT 0,
                PRIMARY KEY (holder_id, secret)
            )
            """,
            """
            CREATE TABLE device_rebind_requests (
                token_hash BYTEA PRIMARY KEY,
                holder_id TEXT NOT NULL REFERENCES holders(id),
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                used_at BIGINT
            )
            """,
        ]),
        Migration(version: 2, name: "the SQLite schema v15: wrapped holder keys", sql: [
            "ALTER TABLE credentials ADD COLUMN wrapped_key BYTEA",
            "ALTER TABLE credentials ADD COLUMN public_key BYTEA",
        ]),
        Migration(version: 3, name: "the SQLite schema v16: OAuth2 authorization server", sql: [
            """
            CREATE TABLE oauth_clients (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                secret_hash BYTEA,
                public_key TEXT,
                redirect_uris TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE oauth_grants (
                id_hash BYTEA PRIMARY KEY,
                kind TEXT NOT NULL,
                client_id TEXT NOT NULL,
                payload BYTEA NOT NULL,
                expires_at BIGINT NOT NULL,
                used BOOLEAN NOT NULL DEFAULT FALSE,
                token_hash BYTEA
            )
            """,
            "CREATE INDEX oauth_grants_expiry ON oauth_grants(expires_at)",
            "CREATE INDEX oauth_grants_client ON oauth_grants(client_id)",
            "ALTER TABLE sads ADD COLUMN client_id TEXT",
            "ALTER TABLE access_tokens ADD COLUMN client_id TEXT",
            "CREATE INDEX sads_client ON sads(client_id) WHERE client_id IS NOT NULL",
            "CREATE INDEX access_tokens_client ON access_tokens(client_id) WHERE client_id IS NOT NULL",
        ]),
        // Every update of a credential row moves its version on (signHash's cache is checked against it).
        Migration(version: 4, name: "the SQLite schema v17: credential row version", sql: [
            "ALTER TABLE credentials ADD COLUMN version BIGINT NOT NULL DEFAULT 0",
            """
            CREATE FUNCTION credentials_next_version() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                NEW.version := OLD.version + 1;
                RETURN NEW;
            END
            $$
            """,
            "CREATE TRIGGER credentials_version BEFORE UPDATE ON credentials FOR EACH ROW EXECUTE FUNCTION credentials_next_version()",
        ]),
    ]

    /// The newest schema version this binary knows.
    public static var schemaVersion: Int { self.migrations.last?.version ?? 0 }

    /// Brings the database to `schemaVersion`, one migration per transaction, under the migration lock.
    func migrate() async throws {
        try await self.transaction { connection in
            try await Self.execute(connection, "SELECT pg_advisory_xact_lock(\(Self.migrationLock))")
            try await Self.execute(connection, """
                CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)
                """)
            let applied = try await Self.rows(connection, "SELECT version FROM schema_migrations").map { try $0["version"].decode(Int.self) }
            let newest = applied.max() ?? 0
            guard newest <= Self.schemaVersion else {
                throw SigilloError(.internalError, "the database has schema version \(newest), newer than this binary's \(Self.schemaVersion): upgrade sigillo first")
            }
            for migration in Self.migrations where !applied.contains(migration.version) {
                for statement in migration.sql {
                    try await Self.execute(connection, PostgresQuery(unsafeSQL: statement))
                }
                let now = Int64(Date().timeIntervalSince1970)
                try await Self.execute(connection, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (\(migration.version), \(migration.name), \(now))")
            }
        }
    }
}
