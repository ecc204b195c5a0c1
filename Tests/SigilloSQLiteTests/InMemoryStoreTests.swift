import Crypto
import Foundation
import GRDB
import SigilloDomain
import SigilloSQLite
import SigilloTestSupport
import Testing

@Suite("SQLiteStore(writer:vault:) on an in-memory queue")
struct InMemoryStoreTests {
    @Test("An in-memory queue is migrated, records the vault's key check and round-trips a holder")
    func migratesAndRoundTrips() async throws {
        let token = try TestToken(sessions: 1)
        let vault = try await SeedVault.open(token: token.token)
        let queue = try DatabaseQueue(configuration: SQLiteStore.makeConfiguration())
        let store = try SQLiteStore(writer: queue, vault: vault)
        let tables = ["holders", "credentials", "otp_devices", "sads", "audit_events", "access_tokens", "crl_state", "password_resets", "mail_outbox",
                      "seed_vault", "throttle_events", "mobile_changes"]
        for table in tables {
            #expect(try await queue.read { try $0.tableExists(table) }, "\(table)")
        }
        #expect(try await queue.read { try Data.fetchOne($0, sql: "SELECT key_check FROM seed_vault WHERE id = 1") } == Data(vault.keyCheck))
        #expect(try await queue.read { try Bool.fetchOne($0, sql: "PRAGMA foreign_keys") } == true)

        let holder = Holder(
            id: "h-1", username: "mario", givenName: "Mario", surname: "Rossi", fiscalCode: TestData.fiscalCode(), email: "mario@example.it",
            mobile: "+393331234567", state: .recognized, passwordHash: "hash", createdAt: Date(timeIntervalSince1970: 1_767_225_600))
        try await store.createHolder(holder)
        #expect(try await store.holder(id: holder.id) == holder)
        #expect(try await store.holders() == [holder])

        // The same database opened again keeps its data and refuses another seed key.
        let reopened = try SQLiteStore(writer: queue, vault: vault)
        #expect(try await reopened.holder(username: "mario") == holder)
        #expect(throws: SigilloError.self) { try SQLiteStore(writer: queue, vault: SeedVault(key: SymmetricKey(size: .bits256))) }
    }

    @Test("An in-memory queue without the configuration works too (GRDB enforces foreign keys by default)")
    func plainQueue() async throws {
        let store = try SQLiteStore(writer: DatabaseQueue(), vault: nil)
        let holder = Holder(id: "h-2", givenName: "Anna", surname: "Bianchi", fiscalCode: TestData.fiscalCode(), email: "anna@example.it",
                            mobile: "+393339876543", createdAt: Date(timeIntervalSince1970: 1_767_225_600))
        try await store.createHolder(holder)
        #expect(try await store.holder(email: "anna@example.it") == holder)
        // A row pointing at no holder is refused.
        await #expect(throws: (any Error).self) {
            try await store.createAccessToken(tokenHash: [1, 2, 3], holderID: "no-such-holder", expiresAt: Date(timeIntervalSince1970: 1_767_229_200))
        }
    }
}
