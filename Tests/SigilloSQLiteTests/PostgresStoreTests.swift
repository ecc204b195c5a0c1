import Foundation
import Logging
import PKCS11
import SigilloDomain
import SigilloPostgres
import SigilloTestSupport
import Testing

/// What only several nodes on one PostgreSQL database can show: two stores (two connection pools, as two nodes have)
/// on one database, the schema's versions, and the database going away and coming back.
@Suite("PostgreSQL store: several nodes, schema versions, outages")
struct PostgresStoreTests {
    static let quiet = Logger(label: "test-store", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Two stores on one new database, each with its own pool, sealing with one token's seed key.
    func twoNodes() async throws -> (a: PostgresStore, b: PostgresStore, fixture: StoreFixture, token: TestToken) {
        let token = try TestToken(sessions: 2)
        let vault = try await SeedVault.open(token: token.token)
        let settings = try await TestPostgres.shared.makeDatabase()
        let a = try await PostgresStore(settings: settings, vault: vault, logger: Self.quiet)
        let b = try await PostgresStore(settings: settings, vault: vault, logger: Self.quiet)
        return (a, b, StoreFixture(kind: .postgres, store: a, token: token), token)
    }

    @Test("two nodes append 60 audit events at once: one intact chain, no sequence twice, the high-water mark is the count")
    func auditAcrossNodes() async throws {
        let (a, b, _, _) = try await twoNodes()
        _ = try await concurrently(60) { index in
            try await (index.isMultiple(of: 2) ? a : b).audit(AuditEvent(actor: "node-\(index % 2)", action: "test.append", target: "\(index)", outcome: "ok", details: ""), at: Date())
        }
        let records = try await a.auditRecords()
        #expect(records.count == 60)
        #expect(records.map(\.sequence) == Array(1...60))
        #expect(AuditChain.firstBrokenRecord(records) == nil)
        #expect(try await b.auditSequenceHighWater() == 60)
        #expect(Set(records.map(\.event.target)).count == 60)
    }

    @Test("two nodes racing: a SAD for 3 signatures is spent 3 times by 32 consumers; an OTP step, a CRL number and a lock count once")
    func compareAndSetAcrossNodes() async throws {
        let (a, b, fixture, _) = try await twoNodes()
        let (holder, device, credential) = try await fixture.activeHolder()
        let sad = try await fixture.newSAD(credential, numSignatures: 3)
        let spent = try await concurrently(32) { index in
            try await (index.isMultiple(of: 2) ? a : b).consumeSAD(idHash: sad.idHash, count: 1, now: fixture.now)
        }
        #expect(spent.filter { $0 }.count == 3)

        let steps = try await concurrently(20) { index in try await (index.isMultiple(of: 2) ? a : b).advanceTOTP(deviceID: device.id, to: 1_000) }
        #expect(steps.filter { $0 }.count == 1)

        let numbers = try await concurrently(20) { index in try await (index.isMultiple(of: 2) ? a : b).nextCRLNumber() }
        #expect(Set(numbers).count == 20)
        #expect(numbers.max() == 20)

        // 30 wrong passwords racing on both nodes: 5 reserved, the others find the lock or the slots full.
        let reservations = try await concurrently(30) { index in
            try await (index.isMultiple(of: 2) ? a : b).reserveAttempt(holderID: holder.id, secret: .password, limit: 5, now: fixture.now, lease: 60)
        }
        #expect(reservations.filter { $0 == .reserved }.count == 5)
        for _ in 0..<5 { _ = try await a.resolveAttempt(holderID: holder.id, secret: .password, right: false) }
        #expect(try await b.secretFailures(holderID: holder.id).pinLocked)
        #expect(try await b.reserveAttempt(holderID: holder.id, secret: .password, limit: 5, now: fixture.now, lease: 60) == .locked)
    }

    @Test("a suspension on one node is what the other reads next: status and SADs")
    func suspensionSeenAtOnce() async throws {
        let (a, b, fixture, _) = try await twoNodes()
        let (_, _, credential) = try await fixture.activeHolder()
        let sad = try await fixture.newSAD(credential, numSignatures: 2)
        #expect(try await a.changeCredentialStatus(id: credential.id, from: .active, to: .suspended, at: fixture.now))
        #expect(try await b.credential(id: credential.id)?.status == .suspended)
        #expect(try await b.consumeSAD(idHash: sad.idHash, count: 1, now: fixture.now) == false)
    }

    @Test("nodes starting together migrate once; a database migrated by a newer binary is refused; another token's seed key is refused")
    func schemaAndVault() async throws {
        let token = try TestToken(sessions: 2)
        let vault = try await SeedVault.open(token: token.token)
        let server = try await TestPostgres.shared
        let settings = try await server.makeDatabase()
        let stores = try await concurrently(4) { _ in try await PostgresStore(settings: settings, vault: vault, logger: Self.quiet) }
        #expect(stores.count == 4)
        stores.forEach { $0.close() }

        let other = try TestToken(sessions: 1)
        let otherVault = try await SeedVault.open(token: other.token)
        let refused = try await sigilloError { _ = try await PostgresStore(settings: settings, vault: otherVault, logger: Self.quiet) }
        #expect(refused?.code == .internalError)
        #expect(refused?.message.contains("seed key") == true)

        try await server.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (\(PostgresStore.schemaVersion + 1), 'from the future', 0)",
                                 database: settings.database)
        let newer = try await sigilloError { _ = try await PostgresStore(settings: settings, vault: vault, logger: Self.quiet) }
        #expect(newer?.message.contains("newer than this binary") == true)
    }

    @Test("a wrong password, a missing database and a closed port are said at start in those words")
    func startErrors() async throws {
        let server = try await TestPostgres.shared
        var settings = try await server.makeDatabase()
        settings.password = "not the password"
        let wrong = try await sigilloError { _ = try await PostgresStore(settings: settings, vault: nil, logger: Self.quiet) }
        #expect(wrong?.message.contains("refused user sigillo") == true, "\(String(describing: wrong))")
        #expect(wrong?.message.contains("not the password") == false)
        var missing = server.settings(database: "no_such_database")
        missing.connectionWait = .seconds(1)
        let absent = try await sigilloError { _ = try await PostgresStore(settings: missing, vault: nil, logger: Self.quiet) }
        #expect(absent?.message.contains("no database no_such_database") == true, "\(String(describing: absent))")
        let ports = try ReservedPorts(count: 1)
        var closed = PostgresSettings()
        closed.port = ports.base
        let unreachable = try await sigilloError { _ = try await PostgresStore(settings: closed, vault: nil, logger: Self.quiet) }
        #expect(unreachable?.code == .databaseUnavailable, "\(String(describing: unreachable))")
    }

    @Test("the database killed: calls answer database_unavailable within the wait, then work again once it is back, same store")
    func outageAndRecovery() async throws {
        let server = try await TestPostgres.start()
        let token = try TestToken(sessions: 1)
        let vault = try await SeedVault.open(token: token.token)
        var settings = try await server.makeDatabase()
        settings.connectionWait = .seconds(2)
        let store = try await PostgresStore(settings: settings, vault: vault, logger: Self.quiet)
        let fixture = StoreFixture(kind: .postgres, store: store, token: token)
        let (_, _, credential) = try await fixture.activeHolder()
        let sad = try await fixture.newSAD(credential, numSignatures: 5)
        #expect(try await store.consumeSAD(idHash: sad.idHash, count: 1, now: fixture.now))

        try await server.kill()
        // Calls on connections that died and calls waiting for a new one: all refused as unavailable, none hangs.
        let outcomes = try await concurrently(8) { _ in
            try await sigilloError { _ = try await store.consumeSAD(idHash: sad.idHash, count: 1, now: fixture.now) }?.code
        }
        #expect(outcomes.allSatisfy { $0 == .databaseUnavailable })
        #expect(await store.ping() == false)

        try await server.launch()
        // The pool reconnects by itself (its own retry; we wait for the event, not for a time).
        var back = false
        for _ in 0..<200 where !back {
            back = await store.ping()
        }
        #expect(back)
        // Nothing committed before the kill was lost; nothing was spent while the database was gone.
        #expect(try await store.sad(idHash: sad.idHash)?.used == 1)
        #expect(try await store.consumeSAD(idHash: sad.idHash, count: 1, now: fixture.now))
        store.close()
        await server.stop()
    }

    @Test("configuration URLs: password from a file or a variable, TLS modes, unknown parameters refused")
    func settingsFromURL() throws {
        let folder = try TestHSM.makeTemporaryDirectory()
        let file = folder.appendingPathComponent("db.password")
        try Data("s3cret\n".utf8).write(to: file)
        let fromFile = try PostgresSettings(url: "postgres://app@db.example:6432/sigillo_prod?pool=40", passwordFile: file.path)
        #expect(fromFile.host == "db.example" && fromFile.port == 6432 && fromFile.username == "app" && fromFile.database == "sigillo_prod")
        #expect(fromFile.password == "s3cret" && fromFile.maximumConnections == 40)
        #expect(fromFile.redacted == "postgres://app@db.example:6432/sigillo_prod")
        let fromVariable = try PostgresSettings(url: "postgresql://app@127.0.0.1/sigillo?sslmode=require", passwordEnvironment: "DBPW", environment: ["DBPW": "v"])
        #expect(fromVariable.password == "v" && fromVariable.port == 5432)
        #expect(throws: SigilloError.self) { try PostgresSettings(url: "postgres://app@h/db", passwordEnvironment: "MISSING", environment: [:]) }
        #expect(throws: SigilloError.self) { try PostgresSettings(url: "postgres://app@h/db?sslmode=sometimes") }
        #expect(throws: SigilloError.self) { try PostgresSettings(url: "postgres://app@h/db?colour=blue") }
        #expect(throws: SigilloError.self) { try PostgresSettings(url: "var/sigillo.sqlite") }
        #expect(PostgresSettings.isURL("postgres://x@y/z") && !PostgresSettings.isURL("var/sigillo.sqlite"))
    }
}

