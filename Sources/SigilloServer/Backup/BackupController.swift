import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PKCS11
import SigilloDomain
import SigilloSQLite
import Synchronization

/// Files of a backup: checksums and private files.
public enum BackupFiles {
    /// SHA-256 (hex) and size of the file at `path`, read in chunks.
    public static func sha256(path: String) throws -> (hex: String, bytes: Int) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ConfigurationError("cannot read \(path)") }
        defer { try? handle.close() }
        var hash = SHA256()
        var bytes = 0
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hash.update(data: chunk)
            bytes += chunk.count
        }
        return (hash.finalize().map { String(format: "%02x", $0) }.joined(), bytes)
    }
}

/// `POST /admin/v1/backup`: an online, consistent copy of the SQLite database, streamed to the operator, with its
/// manifest (base64 JSON) in the `Sigillo-Backup-Manifest` header. `sigillo admin backup DIR` writes both.
///
/// The snapshot is SQLite's online backup (one read transaction of the write-ahead log: the server keeps serving),
/// made in the database's own private folder and deleted once sent. The backup is audited before the snapshot, so
/// the copy holds its own record. A PostgreSQL database is refused: back it up with `pg_dump -Fc` (see README).
struct BackupController: Sendable {
    static let manifestHeader = HTTPField.Name("Sigillo-Backup-Manifest")!

    let services: SigilloServices
    let configuration: ServerConfiguration
    /// The snapshots made and not yet opened by their answer (which unlinks them at once). Any other
    /// `.backup-*.sqlite` in the database's folder is left over from an answer never sent (the server stopped
    /// meanwhile): removed at the next backup.
    let sending = ActiveSnapshots()

    final class ActiveSnapshots: Sendable {
        let paths = Mutex<Set<String>>([])
    }

    func addRoutes(to router: Router<AdminContext>) {
        router.group("admin/v1").post("backup") { _, context in try await self.backup(actor: try context.requireOperator()) }
    }

    func backup(actor: String) async throws -> Response {
        let audit = self.services.domain.audit
        guard let store = self.services.store as? SQLiteStore, let path = store.path else {
            try await audit.record(actor, "database.backup", target: "database", outcome: "refused", details: "store=postgresql")
            throw APIError(status: .conflict, code: "use_pg_dump", description: """
                the database is PostgreSQL: back it up where it runs, with pg_dump -Fc (or continuous archiving with pg_basebackup), \
                and the token with its own procedure (README "Backups")
                """)
        }
        let keys = try await self.tokenKeys()
        try await audit.record(actor, "database.backup", target: "database", outcome: "ok", details: "store=sqlite schema=\(SQLiteStore.schemaVersion)")
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        let snapshot = folder.appendingPathComponent(".backup-\(UUID().uuidString).sqlite").path
        let leftovers = self.sending.paths.withLock { sending in
            defer { sending.insert(snapshot) }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            return names.filter { $0.hasPrefix(".backup-") && $0.hasSuffix(".sqlite") }.map { folder.appendingPathComponent($0).path }.filter { !sending.contains($0) }
        }
        for leftover in leftovers { try? FileManager.default.removeItem(atPath: leftover) }
        let schema: Int
        let digest: (hex: String, bytes: Int)
        do {
            schema = try await store.backup(to: snapshot)
            digest = try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async { continuation.resume(with: Result { try BackupFiles.sha256(path: snapshot) }) }
            }
        } catch {
            try? FileManager.default.removeItem(atPath: snapshot)
            self.sending.paths.withLock { _ = $0.remove(snapshot) }
            try? await audit.record(actor, "database.backup", target: "database", outcome: "failed", details: "\(error)")
            throw error
        }
        let formatter = ISO8601DateFormatter()
        let tokenConfiguration = self.services.token.configuration
        let serial = try? self.services.token.module.tokens().first { $0.label == tokenConfiguration.tokenLabel }?.serial
        let manifest = BackupManifest(
            createdAt: formatter.string(from: self.services.domain.clock.now()), createdBy: actor, sigilloVersion: SigilloVersion.current,
            schemaVersion: schema, store: "sqlite", bytes: digest.bytes, sha256: digest.hex,
            token: .init(label: tokenConfiguration.tokenLabel, serial: serial, module: tokenConfiguration.modulePath), tokenKeys: keys)
        var headers = HTTPFields()
        headers[.contentType] = "application/vnd.sqlite3"
        headers[.cacheControl] = "no-store"
        headers[Self.manifestHeader] = try JSONEncoder().encode(manifest).base64EncodedString()
        let sending = self.sending
        let body = ResponseBody(contentLength: digest.bytes) { writer in
            // Opened, then unlinked at once: the copy is read through the open file and leaves no trace in the folder,
            // whatever happens to the connection.
            let handle = FileHandle(forReadingAtPath: snapshot)
            try? FileManager.default.removeItem(atPath: snapshot)
            sending.paths.withLock { _ = $0.remove(snapshot) }
            guard let handle else { throw SigilloError(.internalError, "the snapshot \(snapshot) vanished") }
            defer { try? handle.close() }
            while let chunk = try handle.read(upToCount: 1 << 18), !chunk.isEmpty {
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    /// The token objects a copy of this database cannot be used without, and whether the token has each now.
    func tokenKeys() async throws -> [BackupManifest.TokenKey] {
        var keys: [(role: String, id: String)] = [("ca", self.configuration.caKeyID), ("seed-key", self.configuration.seedKeyID), ("audit-key", AuditCheckpoints.defaultKeyID)]
        keys += [("kek", self.configuration.kekID), ("kek-binding", Token.bindingKeyID(kekID: self.configuration.kekID))]
        if self.services.tsa != nil { keys.append(("tsa", self.configuration.tsaKeyID)) }
        var result: [BackupManifest.TokenKey] = []
        for key in keys {
            let id = Array(key.id.utf8)
            let count = try await self.services.token.withSession(retry: true) { session throws(PKCS11Error) in
                try session.findObjects([.bytes(.id, id), .bool(.token, true)]).count
            }
            result.append(.init(role: key.role, id: key.id, present: count > 0))
        }
        return result
    }
}
