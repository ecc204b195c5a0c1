import Foundation
import PKCS11
import SigilloDomain
import SigilloSQLite

/// `manifest.json` of a backup folder (`sigillo admin backup DIR`): what was copied, from which installation, and which
/// token objects the copy cannot be used without.
public struct BackupManifest: Codable, Sendable, Equatable {
    /// This format: `sigillo-backup/1`.
    public static let currentFormat = "sigillo-backup/1"
    /// The database copy's file name in the folder.
    public static let databaseFile = "sigillo.sqlite"

    public var format = Self.currentFormat
    /// When the snapshot was taken (ISO 8601, UTC).
    public var createdAt: String
    /// The operator who asked for it (their certificate's subject).
    public var createdBy: String
    public var sigilloVersion: String
    /// The copy's schema version; a binary older than this refuses it (`sigillo restore`, `sigillo serve`).
    public var schemaVersion: Int
    /// `sqlite` (PostgreSQL is backed up with `pg_dump`, see README "Backups").
    public var store: String
    public var database: String = Self.databaseFile
    public var bytes: Int
    /// SHA-256 of the database copy, hex.
    public var sha256: String
    public var token: TokenDescription
    /// The token objects the copy depends on, each with whether the token had it when the copy was made.
    public var tokenKeys: [TokenKey]

    public struct TokenDescription: Codable, Sendable, Equatable {
        public var label: String
        public var serial: String?
        public var module: String
    }

    public struct TokenKey: Codable, Sendable, Equatable {
        /// What it is for: `ca`, `kek`, `kek-binding`, `seed-key`, `audit-key`, `tsa`.
        public var role: String
        /// Its `CKA_ID`.
        public var id: String
        public var present: Bool
    }
}

/// The version this build of Sigillo reports (backup manifests, `sigillo doctor`).
public enum SigilloVersion {
    public static let current = "0.17.0-dev"
}

extension BackupManifest {
    /// The text written beside the copy as `README.txt`: what is in the folder and what is not (the token), and how
    /// to restore.
    public var readme: String {
        let keys = self.tokenKeys.map { "  - \($0.id) (\($0.role))\($0.present ? "" : " — NOT in the token when the copy was made")" }.joined(separator: "\n")
        return """
            Sigillo backup, \(self.createdAt), taken by \(self.createdBy)
            Database: \(self.database) (\(self.store), schema version \(self.schemaVersion), \(self.bytes) bytes, SHA-256 \(self.sha256))
            Sigillo \(self.sigilloVersion)

            THIS FOLDER IS HALF A BACKUP. The database is useless without the token it was made with:
            token '\(self.token.label)'\(self.token.serial.map { " (serial \($0))" } ?? "") through \(self.token.module), whose objects
            \(keys)
            seal the OTP seeds (seed key), wrap the holder keys (KEK and its binding key), sign certificates, CRLs and
            OCSP answers (CA), time-stamps (TSA) and the audit checkpoints (audit key; the token also keeps the audit
            log's anchor). Holder keys kept as token objects (holderKeys: token) are in the token too.

            Back up the token with its own procedure, and keep both copies together:
            - SoftHSM: stop the server (SoftHSM writes an object file per change), then copy the token's folder
              (under directories.tokendir of the softhsm2.conf the server uses, the folder whose name ends with the
              token's serial, which `softhsm2-util --show-slots` shows) with its permissions, e.g.
                systemctl stop sigillo && tar -C /var/lib/softhsm/tokens -cpf token-backup.tar <folder> && systemctl start sigillo
              Restore it to the same place (or to the directories.tokendir of the new machine) before starting.
            - A network HSM or HSM cluster: the vendor's backup or cloning procedure (a backup HSM, or a key-wrapped
              backup under its security-officer or key-custodian cards), under a key ceremony with the required
              custodians present. The keys never leave the HSM family in clear; a restore is a ceremony too.

            Restore (server stopped, the token restored or the same token):
              sigillo restore THIS-FOLDER --config /etc/sigillo/sigillo.json
            checks this manifest and the copy's SHA-256, refuses a copy newer than the binary, and places the copy at the
            configuration's `database` (which must not exist). Then `sigillo doctor`, then `sigillo serve`: a database
            restored next to another token is refused at start (the seed key). Records written after this copy are
            lost: `sigillo admin audit verify` reports the anchored record missing until `sigillo admin audit
            reset-anchor` (README "Backups").

            """
    }

    /// Reads and checks `manifest.json` in `folder` and the database copy it names: the format, the checksum and
    /// the size, and a schema this binary knows.
    ///
    /// - Returns: the manifest and the copy's path.
    /// - Throws: `ConfigurationError` saying what is wrong.
    public static func verify(folder: String) throws -> (manifest: BackupManifest, database: String) {
        let directory = URL(fileURLWithPath: folder)
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent("manifest.json").path) else {
            throw ConfigurationError("\(folder) has no readable manifest.json: not a folder `sigillo admin backup` wrote")
        }
        let manifest: BackupManifest
        do {
            manifest = try JSONDecoder().decode(BackupManifest.self, from: data)
        } catch {
            throw ConfigurationError("\(folder)/manifest.json cannot be read: \(error)")
        }
        guard manifest.format == Self.currentFormat else {
            throw ConfigurationError("\(folder)/manifest.json has format '\(manifest.format)'; this binary reads \(Self.currentFormat)")
        }
        guard manifest.store == "sqlite", !manifest.database.contains("/"), !manifest.database.hasPrefix(".") else {
            throw ConfigurationError("\(folder)/manifest.json names a \(manifest.store) database '\(manifest.database)': not an SQLite copy this binary restores")
        }
        let database = directory.appendingPathComponent(manifest.database).path
        let (digest, bytes) = try BackupFiles.sha256(path: database)
        guard bytes == manifest.bytes, digest == manifest.sha256 else {
            throw ConfigurationError("\(database) is not the copy the manifest describes (SHA-256 \(digest), \(bytes) bytes; the manifest says \(manifest.sha256), \(manifest.bytes) bytes): damaged or altered")
        }
        guard manifest.schemaVersion <= SQLiteStore.schemaVersion else {
            throw ConfigurationError("the backup has schema version \(manifest.schemaVersion), newer than this binary's \(SQLiteStore.schemaVersion): restore it with that sigillo version or a newer one")
        }
        return (manifest, database)
    }
}
