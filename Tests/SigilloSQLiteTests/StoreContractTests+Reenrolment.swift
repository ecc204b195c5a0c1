import Foundation
import GRDB
import PKCS11
import SigilloDomain
@testable import SigilloSQLite
import SigilloTestSupport
import Testing

extension StoreContractTests {
    // MARK: Re-enrolment, re-invitation (issue 11, items 4 and 5)

    @Test("HolderStore: a holder closed for good frees fiscal code, email and mobile for a new order; the old row stays; the username stays taken",
          arguments: StoreKind.allCases)
    func reEnrolment(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let (old, _, credential) = try await fixture.activeHolder()
        let oldUsername = try #require(try await store.holder(id: old.id)?.username)

        // While the old holder is open (active, then expired), the same person is a conflict.
        var again = fixture.makeHolder()
        again.fiscalCode = old.fiscalCode
        again.email = old.email
        again.mobile = old.mobile
        #expect(try await sigilloError { try await store.createHolder(again) }?.code == .conflict)
        #expect(try await store.transitionHolder(id: old.id, from: [.active], to: .expired))
        #expect(try await sigilloError { try await store.createHolder(again) }?.code == .conflict)

        // Closed for good: the new order goes in, and lookups by contact details find it, not the closed one.
        #expect(try await store.transitionHolder(id: old.id, from: [.expired], to: .revoked))
        try await store.createHolder(again)
        #expect(try await store.holder(email: old.email) == again)
        #expect(try await store.holder(mobile: old.mobile) == again)
        // History stays: the old row, its username and its credential.
        let closed = try #require(try await store.holder(id: old.id))
        #expect(closed.state == .revoked && closed.username == oldUsername && closed.fiscalCode == again.fiscalCode)
        #expect(try await store.credentials(holderID: old.id).map(\.id) == [credential.id])
        #expect(Set(try await store.holders().map(\.id)) == [old.id, again.id])
        #expect(try await store.holder(username: oldUsername)?.id == old.id)

        // One open holder per person still: a third order for the same data is a conflict naming the field.
        let changes: [(String, (inout Holder) -> Void)] = [("fiscal code", { $0.fiscalCode = old.fiscalCode }), ("email", { $0.email = old.email }),
                                                            ("mobile", { $0.mobile = old.mobile })]
        for (field, change) in changes {
            var third = fixture.makeHolder()
            change(&third)
            let error = try await sigilloError { try await store.createHolder(third) }
            #expect(error?.code == .conflict && error?.message.contains(field) == true, "\(field): \(String(describing: error))")
        }
        // Nor may another open holder take the new holder's number.
        let other = try await fixture.newHolder()
        #expect(try await sigilloError { try await store.setHolderMobile(id: other.id, mobile: old.mobile) }?.code == .conflict)
        // The closed holder's username is never handed out again, not even to the same person's new order.
        var reuse = fixture.makeHolder(username: oldUsername)
        reuse.fiscalCode = TestData.fiscalCode()
        let taken = try await sigilloError { try await store.createHolder(reuse) }
        #expect(taken?.code == .conflict && taken?.message.contains("username") == true)
        let (invited, codeHash) = try await fixture.invitedHolder()
        let activation = try await sigilloError {
            try await store.completeActivation(codeHash: codeHash, at: fixture.now, username: oldUsername, passwordHash: "hash",
                                               device: fixture.makeDevice(holderID: invited.id), credential: fixture.makeCredential(holderID: invited.id))
        }
        #expect(activation?.code == .conflict)
        #expect(try await store.invitation(codeHash: codeHash)?.usedAt == nil)
    }

    @Test("EnrollmentStore: a new invitation voids every earlier unused one of the holder (unknown code); used ones and other holders' stay",
          arguments: StoreKind.allCases)
    func reInvitation(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let (holder, first) = try await fixture.invitedHolder()
        let (neighbour, theirs) = try await fixture.invitedHolder()
        try await store.setPendingDevice(codeHash: first, device: fixture.makeDevice(holderID: holder.id))
        let second = randomBytes(32)
        let third = randomBytes(32)
        func invitation(_ codeHash: [UInt8]) -> Invitation {
            Invitation(codeHash: codeHash, holderID: holder.id, createdAt: fixture.now, expiresAt: fixture.now.addingTimeInterval(86_400))
        }
        #expect(try await store.createInvitation(invitation(second)) == 1)
        #expect(try await store.invitation(codeHash: first) == nil)
        #expect(try await store.invitation(codeHash: second) != nil)
        #expect(try await store.invitation(codeHash: theirs)?.holderID == neighbour.id)
        // The voided code can no longer be used for anything.
        #expect(try await sigilloError { try await store.setPendingDevice(codeHash: first, device: fixture.makeDevice(holderID: holder.id)) }?.code == .invitationUsed)
        let late = try await sigilloError {
            try await store.completeActivation(codeHash: first, at: fixture.now, username: "late-\(holder.id.prefix(6))", passwordHash: "hash",
                                               device: fixture.makeDevice(holderID: holder.id), credential: fixture.makeCredential(holderID: holder.id))
        }
        #expect(late?.code == .invitationUsed)
        #expect(try await store.holder(id: holder.id)?.state == .invited)

        // A used invitation is history: a later one leaves it.
        try await store.completeActivation(codeHash: second, at: fixture.now, username: "user-\(holder.id.prefix(6))", passwordHash: "hash",
                                           device: fixture.makeDevice(holderID: holder.id), credential: fixture.makeCredential(holderID: holder.id))
        #expect(try await store.createInvitation(invitation(third)) == 0)
        #expect(try await store.invitation(codeHash: second)?.usedAt == fixture.now)
        #expect(try await store.invitation(codeHash: theirs) != nil)

        // Racing invitations: whatever the order, exactly one code is left unused.
        let (raced, _) = try await fixture.invitedHolder()
        let codes = (0..<20).map { _ in randomBytes(32) }
        _ = try await concurrently(20) { index in
            try await store.createInvitation(Invitation(codeHash: codes[index], holderID: raced.id, createdAt: fixture.now, expiresAt: fixture.now.addingTimeInterval(86_400)))
        }
        var unused = 0
        for code in codes where try await store.invitation(codeHash: code) != nil { unused += 1 }
        #expect(unused == 1)
    }

    @Test("AuditStore: head, record by sequence and latest checkpoint", arguments: StoreKind.allCases)
    func auditLookups(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        #expect(try await store.auditHead() == nil)
        #expect(try await store.latestAuditCheckpoint() == nil)
        for index in 0..<5 {
            let action = index == 2 || index == 3 ? AuditCheckpoint.action : "test.event"
            try await store.audit(AuditEvent(actor: "test", action: action, target: "\(index)", outcome: "ok"), at: fixture.now)
        }
        let records = try await store.auditRecords()
        #expect(try await store.auditHead() == records.last)
        #expect(try await store.auditRecord(sequence: 2) == records[1])
        #expect(try await store.auditRecord(sequence: 99) == nil)
        #expect(try await store.latestAuditCheckpoint() == records[3])
    }
}

@Suite("Migration v11: the holders table rebuilt")
struct HoldersRebuildMigrationTests {
    @Test("rows, columns, indexes and foreign keys survive; only open holders are unique by fiscal code, email and mobile")
    func rebuild() async throws {
        let path = try TestHSM.makeTemporaryDirectory().appendingPathComponent("old.sqlite").path
        let pool = try DatabasePool(path: path, configuration: SQLiteStore.makeConfiguration())
        let migrator = SQLiteStore.migrator(vault: nil, report: SQLiteStore.MigrationReport())
        let index = try #require(migrator.migrations.firstIndex { $0.hasPrefix("v11:") })
        try migrator.migrate(pool, upTo: migrator.migrations[index - 1])
        // Column by column (name, type, not null, default, primary key): later migrations may add columns, none may go.
        let columns = { @Sendable (db: Database) in
            try Row.fetchAll(db, sql: "PRAGMA table_info(holders)").map { "\($0["name"] as String) \($0["type"] as String) \($0["notnull"] as Int) \($0["dflt_value"] as String? ?? "-") \($0["pk"] as Int)" }
        }
        let before = try await pool.read(columns)
        let names = try await pool.read { db in try Row.fetchAll(db, sql: "PRAGMA table_info(holders)").map { $0["name"] as String } }.joined(separator: ", ")
        try await pool.write { db in
            try db.execute(sql: """
                INSERT INTO holders (id, username, given_name, surname, fiscal_code, email, mobile, state, password_hash, created_at, user_code_hash)
                VALUES ('h-old', 'mario', 'Mario', 'Rossi', 'RSSMRA80A01H501U', 'mario@example.it', '+393331234567', 'revoked', 'hash', 1767225600, 'code-hash'),
                       ('h-other', NULL, 'Anna', 'Bianchi', 'BNCNNA85B41F205X', 'anna@example.it', '+393339876543', 'created', NULL, 1767225601, NULL);
                INSERT INTO credentials (id, holder_id, key_algorithm, token_key_id, certificate, serial_number, not_before, not_after, status, multisign)
                VALUES ('c-old', 'h-old', 'ecdsa-p256', 'c-old', x'3000', '0A', 1767225600, 1861920000, 'revoked', 10);
                INSERT INTO access_tokens (token_hash, holder_id, expires_at) VALUES (x'01', 'h-old', 1767229200);
                INSERT INTO secret_attempts (holder_id, secret, failures) VALUES ('h-old', 'password', 3);
                """)
        }
        let rows = try await pool.read { db in try Row.fetchAll(db, sql: "SELECT \(names) FROM holders ORDER BY id") }

        let store = try SQLiteStore(writer: pool, vault: nil)
        #expect(Array(try await pool.read(columns).prefix(before.count)) == before)
        #expect(try await pool.read { db in try Row.fetchAll(db, sql: "SELECT \(names) FROM holders ORDER BY id") } == rows)
        #expect(rows.count == 2)
        #expect(try await store.credentials(holderID: "h-old").map(\.id) == ["c-old"])
        #expect(try await pool.read { db in try Int.fetchOne(db, sql: "SELECT failures FROM secret_attempts WHERE holder_id = 'h-old'") } == 3)
        #expect(try await pool.read { db in try Row.fetchAll(db, sql: "PRAGMA foreign_key_check") }.isEmpty)
        // Foreign keys still point at the rebuilt table and are enforced.
        await #expect(throws: (any Error).self) {
            try await store.createAccessToken(tokenHash: [2], holderID: "h-nobody", expiresAt: Date(timeIntervalSince1970: 1_767_229_200))
        }
        let indexes = try await pool.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'holders' AND sql IS NOT NULL") }
        #expect(Set(indexes) == ["holders_open_fiscal_code", "holders_open_email", "holders_open_mobile"])

        // The closed holder's data is free; the open one's is not; the username stays taken.
        let renewed = Holder(id: "h-new", givenName: "Mario", surname: "Rossi", fiscalCode: "RSSMRA80A01H501U", email: "mario@example.it",
                             mobile: "+393331234567", createdAt: Date(timeIntervalSince1970: 1_767_312_000))
        try await store.createHolder(renewed)
        #expect(try await store.holder(email: "mario@example.it")?.id == "h-new")
        var copy = renewed
        copy.id = "h-copy"
        #expect(try await sigilloError { try await store.createHolder(copy) }?.code == .conflict)
        var anna = Holder(id: "h-anna2", givenName: "Anna", surname: "Bianchi", fiscalCode: "BNCNNA85B41F205X", email: "anna2@example.it",
                          mobile: "+393330000000", createdAt: Date(timeIntervalSince1970: 1_767_312_000))
        #expect(try await sigilloError { try await store.createHolder(anna) }?.message.contains("fiscal code") == true)
        anna.fiscalCode = "VRDLGU70C01H501Z"
        anna.username = "mario"
        #expect(try await sigilloError { try await store.createHolder(anna) }?.message.contains("username") == true)
    }
}
