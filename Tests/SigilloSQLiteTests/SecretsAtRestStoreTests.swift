import Crypto
import Foundation
import GRDB
import SigilloDomain
import SigilloSQLite
import SigilloTestSupport
import Synchronization
import Testing

/// The mode bits (`0o777`) of a file or folder.
func mode(_ path: String) throws -> Int {
    try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) & 0o777
}

/// The bytes of the database, its write-ahead log and its shared-memory index: what a copy of the folder gives.
func folderBytes(_ path: String) throws -> Data {
    var bytes = Data()
    for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
        bytes += try Data(contentsOf: URL(fileURLWithPath: file))
    }
    return bytes
}

@Suite("Secrets at rest: the database's files and the mail outbox")
struct SecretsAtRestStoreTests {
    static let now = Date(timeIntervalSince1970: 1_767_225_600)

    /// A vault with a software key (the token's is tested in SeedVaultTests): what matters here is what reaches the file.
    static func vault() -> SeedVault { SeedVault(key: SymmetricKey(size: .bits256)) }

    /// A mail whose body carries a link no one but the recipient may read.
    static func secretMail(_ secret: String, recipient: String = "mario@example.it", at time: Date = Self.now) -> QueuedMail {
        QueuedMail(kind: "password-reset", recipient: recipient, subject: "Reimpostazione / reset",
                   body: "Gentile Mario,\nhttps://firma.example.it/reset?code=\(secret)\n", createdAt: time)
    }

    static func secret() -> String { "S3CR3T-" + UUID().uuidString }

    @Test("A new database: folder 0700, database, -wal and -shm 0600, after writes and after reopening")
    func newFiles() async throws {
        let folder = try TestHSM.makeTemporaryDirectory().appendingPathComponent("var/db")
        let path = folder.appendingPathComponent("sigillo.sqlite").path
        var warnings: [String] = []
        let store = try SQLiteStore(path: path, vault: Self.vault()) { warnings.append($0) }
        try await store.enqueueMail(Self.secretMail(Self.secret()))
        try await store.audit(AuditEvent(actor: "test", action: "test", target: "t", outcome: "ok"), at: Self.now)
        #expect(warnings.isEmpty)
        #expect(try mode(folder.path) == 0o700)
        #expect(try mode(folder.deletingLastPathComponent().path) == 0o700)
        for file in [path, path + "-wal", path + "-shm"] {
            #expect(FileManager.default.fileExists(atPath: file), "\(file)")
            #expect(try mode(file) == 0o600, "\(file)")
        }
        // Another opening (a second node, `sigillo admin` tools) changes nothing.
        let again = try SQLiteStore(path: path, vault: nil)
        #expect(try await again.auditRecords().count == 1)
        for file in [path, path + "-wal", path + "-shm"] { #expect(try mode(file) == 0o600, "\(file)") }
    }

    @Test("An earlier version's files: a folder others can read is made private (with a warning), files 0644 become 0600")
    func earlierFiles() async throws {
        let folder = try TestHSM.makeTemporaryDirectory().appendingPathComponent("var")
        let path = folder.appendingPathComponent("sigillo.sqlite").path
        // As an earlier version left them, still open by another process: folder 0755, database, -wal and -shm 0644.
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let earlier = try DatabasePool(path: path)
        try await earlier.write { try $0.execute(sql: "CREATE TABLE earlier (x); INSERT INTO earlier VALUES (1)") }
        for file in [folder.path, path, path + "-wal", path + "-shm"] {
            try FileManager.default.setAttributes([.posixPermissions: file == folder.path ? 0o755 : 0o644], ofItemAtPath: file)
        }
        #expect(try mode(path + "-wal") == 0o644)
        defer { try? earlier.close() }

        let warnings = Mutex<[String]>([])
        let store = try SQLiteStore(path: path, vault: Self.vault()) { message in warnings.withLock { $0.append(message) } }
        try await store.enqueueMail(Self.secretMail(Self.secret()))
        #expect(try mode(folder.path) == 0o700)
        for file in [path, path + "-wal", path + "-shm"] { #expect(try mode(file) == 0o600, "\(file)") }
        let said = warnings.withLock { $0 }
        #expect(said.count == 1 && said.first?.contains(folder.path) == true && said.first?.contains("755") == true, "\(said)")
    }

    @Test("A folder others can write to is refused, and left as it is; so is a -wal that is not a regular file")
    func refusedFolders() async throws {
        let base = try TestHSM.makeTemporaryDirectory()
        for shared in [0o777, 0o1777, 0o775] {
            let folder = base.appendingPathComponent("shared-\(String(shared, radix: 8))")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try FileManager.default.setAttributes([.posixPermissions: shared], ofItemAtPath: folder.path)
            let error = #expect(throws: SigilloError.self) { try SQLiteStore(path: folder.appendingPathComponent("sigillo.sqlite").path, vault: nil) }
            #expect(error?.message.contains("written by other users") == true, "\(String(describing: error))")
            let left = try FileManager.default.attributesOfItem(atPath: folder.path)[.posixPermissions] as? Int
            #expect(left.map { $0 & 0o7777 } == shared)
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("sigillo.sqlite").path))
        }
        // A write-ahead log planted as a link to a file the attacker reads.
        let folder = base.appendingPathComponent("planted")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("sigillo.sqlite").path
        let bait = base.appendingPathComponent("bait").path
        try Data().write(to: URL(fileURLWithPath: bait))
        try FileManager.default.createSymbolicLink(atPath: path + "-wal", withDestinationPath: bait)
        let planted = #expect(throws: SigilloError.self) { try SQLiteStore(path: path, vault: nil) }
        #expect(planted?.message.contains("not a regular file") == true, "\(String(describing: planted))")
        #expect(try Data(contentsOf: URL(fileURLWithPath: bait)).isEmpty)
    }

    @Test("A waiting mail's body is sealed in the file; claimed, it opens; sent or given up, it is gone")
    func mailBodies() async throws {
        let path = try TestHSM.makeTemporaryDirectory().appendingPathComponent("sigillo.sqlite").path
        let store = try SQLiteStore(path: path, vault: Self.vault())
        let (sentSecret, failedSecret, retriedSecret) = (Self.secret(), Self.secret(), Self.secret())
        let sent = Self.secretMail(sentSecret)
        let failed = Self.secretMail(failedSecret, at: Self.now.addingTimeInterval(1))
        let retried = Self.secretMail(retriedSecret, at: Self.now.addingTimeInterval(2))
        for mail in [sent, failed, retried] { try await store.enqueueMail(mail) }
        for secret in [sentSecret, failedSecret, retriedSecret] {
            #expect(try folderBytes(path).range(of: Data(secret.utf8)) == nil)
        }
        #expect(try await store.mails().map(\.body) == [sent.body, failed.body, retried.body])

        let claimed = try await store.claimDueMails(now: Self.now.addingTimeInterval(2), owner: "A", leaseUntil: Self.now.addingTimeInterval(600), limit: 10)
        #expect(claimed.map(\.body) == [sent.body, failed.body, retried.body])
        #expect(try await store.markMailSent(id: sent.id, owner: "A", at: Self.now.addingTimeInterval(3)))
        #expect(try await store.markMailFailed(id: failed.id, owner: "A", at: Self.now.addingTimeInterval(3), error: "550 no such user"))
        #expect(try await store.markMailRetry(id: retried.id, owner: "A", nextAttempt: Self.now.addingTimeInterval(60), error: "451 later"))
        let after = try await store.mails()
        #expect(after.map(\.status) == [.sent, .failed, .pending])
        #expect(after.map(\.body) == ["", "", retried.body])
        #expect(after[0].recipient == sent.recipient && after[0].subject == sent.subject && after[0].kind == sent.kind)
        // The retried one is still sealed, and opens at its next attempt.
        let again = try await store.claimDueMails(now: Self.now.addingTimeInterval(60), owner: "B", leaseUntil: Self.now.addingTimeInterval(600), limit: 10)
        #expect(again.map(\.body) == [retried.body])
        #expect(try folderBytes(path).range(of: Data(retriedSecret.utf8)) == nil)
    }

    @Test("A sealed body moved to another mail, or a mail readdressed, does not open: given up, never sent")
    func movedBodies() async throws {
        let path = try TestHSM.makeTemporaryDirectory().appendingPathComponent("sigillo.sqlite").path
        let store = try SQLiteStore(path: path, vault: Self.vault())
        let victim = Self.secretMail(Self.secret(), recipient: "victim@example.it")
        let attacker = Self.secretMail("nothing", recipient: "attacker@example.it", at: Self.now.addingTimeInterval(1))
        let readdressed = Self.secretMail(Self.secret(), recipient: "victim2@example.it", at: Self.now.addingTimeInterval(2))
        for mail in [victim, attacker, readdressed] { try await store.enqueueMail(mail) }
        // Someone with write access to the file copies the victim's sealed body into their own mail, and readdresses another.
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: "UPDATE mail_outbox SET sealed_body = (SELECT sealed_body FROM mail_outbox WHERE id = ?) WHERE id = ?", arguments: [victim.id, attacker.id])
            try db.execute(sql: "UPDATE mail_outbox SET recipient = 'attacker@example.it' WHERE id = ?", arguments: [readdressed.id])
        }
        try queue.close()
        let claimed = try await store.claimDueMails(now: Self.now.addingTimeInterval(2), owner: "A", leaseUntil: Self.now.addingTimeInterval(600), limit: 10)
        #expect(claimed.map(\.id) == [victim.id])
        let mails = try await store.mails()
        for id in [attacker.id, readdressed.id] {
            let mail = try #require(mails.first { $0.id == id })
            #expect(mail.status == .failed && mail.body.isEmpty && mail.lastError?.contains("does not open") == true)
        }
    }

    @Test("Without the vault a waiting body stays in clear; the next opening with the vault seals it and the clear pages leave the file")
    func vaultlessThenSealed() async throws {
        let path = try TestHSM.makeTemporaryDirectory().appendingPathComponent("sigillo.sqlite").path
        let secret = Self.secret()
        let mail = Self.secretMail(secret)
        let vaultless = try SQLiteStore(path: path, vault: nil)
        try await vaultless.enqueueMail(mail)
        #expect(try folderBytes(path).range(of: Data(secret.utf8)) != nil)

        let vault = Self.vault()
        let sealed = try SQLiteStore(path: path, vault: vault)
        #expect(try folderBytes(path).range(of: Data(secret.utf8)) == nil)
        #expect(try await sealed.mails().map(\.body) == [mail.body])
        // A store without the vault cannot send what is sealed: it leaves it to one that can, untouched.
        #expect(try await vaultless.claimDueMails(now: Self.now, owner: "A", leaseUntil: Self.now.addingTimeInterval(600), limit: 10).isEmpty)
        await #expect(throws: SigilloError.self) { try await vaultless.mails() }
        let claimed = try await sealed.claimDueMails(now: Self.now, owner: "B", leaseUntil: Self.now.addingTimeInterval(600), limit: 10)
        #expect(claimed.map(\.body) == [mail.body])
    }

    @Test("Upgrade: the old SMS outbox with its codes and delivered mails' clear bodies are gone from the file at the first opening")
    func upgrade() async throws {
        let path = try TestHSM.makeTemporaryDirectory().appendingPathComponent("sigillo.sqlite").path
        let vault = Self.vault()
        let store = try SQLiteStore(path: path, vault: vault)
        try await store.audit(AuditEvent(actor: "test", action: "test", target: "t", outcome: "ok"), at: Self.now)
        let (smsCode, deliveredSecret, waitingSecret) = ("SMS-CODE-" + UUID().uuidString, Self.secret(), Self.secret())
        // The database as version 12 left it: the `outbox` table, clear bodies in `mail_outbox`, no `sealed_body`.
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            try db.execute(sql: """
                ALTER TABLE mail_outbox DROP COLUMN sealed_body;
                CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, recipient TEXT NOT NULL, body TEXT NOT NULL,
                    created_at INTEGER NOT NULL, sent_at INTEGER, subject TEXT);
                DELETE FROM grdb_migrations WHERE identifier LIKE 'v13:%';
                """)
            try db.execute(sql: "INSERT INTO outbox (channel, recipient, body, created_at) VALUES ('sms', '+393331234567', ?, 0)",
                           arguments: ["Sigillo: your code is \(smsCode)."])
            for (id, status, secret) in [("m1", "sent", deliveredSecret), ("m2", "pending", waitingSecret)] {
                try db.execute(sql: """
                    INSERT INTO mail_outbox (id, kind, recipient, subject, body, created_at, status, attempts, next_attempt_at)
                    VALUES (?, 'password-reset', 'mario@example.it', 's', ?, 0, ?, 1, 0)
                    """, arguments: [id, "https://firma.example.it/reset?code=\(secret)", status])
            }
        }
        try queue.close()
        for secret in [smsCode, deliveredSecret, waitingSecret] { #expect(try folderBytes(path).range(of: Data(secret.utf8)) != nil) }

        let upgraded = try SQLiteStore(path: path, vault: vault)
        for secret in [smsCode, deliveredSecret, waitingSecret] {
            #expect(try folderBytes(path).range(of: Data(secret.utf8)) == nil, "\(secret)")
        }
        let mails = try await upgraded.mails()
        #expect(mails.map(\.body) == ["", "https://firma.example.it/reset?code=\(waitingSecret)"])
        let tables = try await DatabaseQueue(path: path).read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") }
        #expect(!tables.contains("outbox"))
    }

    @Test("A keyed digest (for short codes) is the token's: not the plain SHA-256, bound to its record, the same for the same key")
    func keyedDigest() {
        let vault = Self.vault()
        let code = Array(SHA256.hash(data: Data("123456".utf8)))
        let digest = vault.digest(code, context: "sms_codes/h1")
        #expect(digest.count == 32 && digest != code)
        #expect(digest == vault.digest(code, context: "sms_codes/h1"))
        #expect(digest != vault.digest(code, context: "sms_codes/h2"))
        #expect(digest != Self.vault().digest(code, context: "sms_codes/h1"))
    }
}
