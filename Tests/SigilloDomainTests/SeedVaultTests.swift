import Crypto
import Foundation
import PKCS11
import SigilloDomain
import SigilloPKI
import SigilloSQLite
import SigilloTestSupport
import Testing

@Suite("OTP seeds sealed at rest with the token's seed key")
struct SeedVaultTests {
    func sqlite(_ fixture: ServiceFixture, _ sql: String) throws {
        let result = try run("sqlite3", [fixture.databasePath, sql])
        #expect(result.status == 0, "\(result.output)")
    }

    /// An app holder and a hardware token in the inventory, with their seeds.
    func seeded(_ fixture: ServiceFixture) async throws -> (holder: ServiceFixture.ActiveHolder, hardwareSeed: [UInt8]) {
        let holder = try await fixture.activeHolder()
        let hardwareSeed = (0..<20).map { _ in UInt8.random(in: 0...255) }
        let hex = hardwareSeed.map { String(format: "%02x", $0) }.joined()
        _ = try await fixture.service.administration.importHardwareTokens(csv: "HW-77,\(hex)", actor: "op")
        return (holder, hardwareSeed)
    }

    @Test("app and hardware token seeds are in the database only sealed, and open again with the token's key")
    func sealedAtRest() async throws {
        let fixture = try await ServiceFixture()
        let (holder, hardwareSeed) = try await self.seeded(fixture)
        let raw = try databaseBytes(fixture.databasePath)
        #expect(raw.range(of: Data(holder.secret)) == nil)
        #expect(raw.range(of: Data(hardwareSeed)) == nil)
        #expect(try await fixture.store.activeOTPDevice(holderID: holder.holder.id)?.secret == holder.secret)
        #expect(try await fixture.store.hardwareToken(serial: "HW-77")?.seed == hardwareSeed)
        // The key is derived in the token: opening the vault again gives the same key.
        let again = try await SeedVault.open(token: fixture.token.token)
        let reopened = try SQLiteStore(path: fixture.databasePath, vault: again)
        #expect(try await reopened.activeOTPDevice(holderID: holder.holder.id)?.secret == holder.secret)
        // The key never leaves the token.
        let key = try await fixture.token.token.withSession { session throws(PKCS11Error) in
            try session.findObjects([.objectClass(.secretKey), .bytes(.id, Array(SeedVault.defaultKeyID.utf8))])
        }
        try #require(key.count == 1)
        // Asked for its value, the token answers CKR_ATTRIBUTE_SENSITIVE (not any error), and the key is marked sensitive
        // and non-extractable, so it cannot be wrapped out either.
        do {
            let value = try await fixture.token.token.withSession { session throws(PKCS11Error) in try session.attribute(.value, of: key[0]) }
            Issue.record("the seed key's value was read: \(value.count) bytes")
        } catch let error as PKCS11Error {
            #expect(error.rv == .attributeSensitive, "\(error)")
        }
        let flags = try await fixture.token.token.withSession { session throws(PKCS11Error) in
            (sensitive: try session.attribute(.sensitive, of: key[0]), extractable: try session.attribute(.extractable, of: key[0]))
        }
        #expect(flags.sensitive == [1] && flags.extractable == [0], "CKA_SENSITIVE \(flags.sensitive), CKA_EXTRACTABLE \(flags.extractable)")
    }

    @Test("another token's key is refused at opening; a seed copied into another holder's row does not open")
    func wrongKeyAndMovedSeed() async throws {
        let fixture = try await ServiceFixture()
        let (holder, _) = try await self.seeded(fixture)
        #expect(throws: SigilloError.self) { try SQLiteStore(path: fixture.databasePath, vault: SeedVault(key: SymmetricKey(size: .bits256))) }
        // A mail-only store (no vault) opens, but reads no seed.
        let mailOnly = try SQLiteStore(path: fixture.databasePath, vault: nil)
        await #expect(throws: SigilloError.self) { _ = try await mailOnly.activeOTPDevice(holderID: holder.holder.id) }

        let other = try await fixture.activeHolder(name: "Luca")
        try self.sqlite(fixture, """
            UPDATE otp_devices SET secret = (SELECT secret FROM otp_devices WHERE holder_id = '\(holder.holder.id)') WHERE holder_id = '\(other.holder.id)'
            """)
        await #expect(throws: SigilloError.self) { _ = try await fixture.store.activeOTPDevice(holderID: other.holder.id) }
        // The holder whose seed was copied still signs in; the other gets a clear refusal, not a signature.
        let error = await #expect(throws: SigilloError.self) {
            _ = try await fixture.service.authorization.authorize(holderID: other.holder.id, credentialID: other.credential.id, numSignatures: 1,
                                                    hashes: [Array(SHA256.hash(data: Data("x".utf8)))], hashAlgorithm: .sha256,
                                                    password: other.password, otp: fixture.otp(other))
        }
        #expect(error?.code == .internalError)
    }

    @Test("upgrade: seeds an earlier version stored in clear are sealed at the first opening with the token; without it, a clear error")
    func upgradeSealsClearSeeds() async throws {
        let fixture = try await ServiceFixture()
        let (holder, hardwareSeed) = try await self.seeded(fixture)
        let hex = { (bytes: [UInt8]) in bytes.map { String(format: "%02X", $0) }.joined() }
        // The database as version 7 left it: seeds in clear, no vault table, migration v8 not applied.
        try self.sqlite(fixture, """
            UPDATE otp_devices SET secret = X'\(hex(holder.secret))' WHERE holder_id = '\(holder.holder.id)';
            UPDATE hardware_tokens SET seed = X'\(hex(hardwareSeed))' WHERE serial = 'HW-77';
            DROP TABLE seed_vault;
            DELETE FROM grdb_migrations WHERE identifier LIKE 'v8:%';
            """)
        #expect(try databaseBytes(fixture.databasePath).range(of: Data(holder.secret)) != nil)

        let refused = #expect(throws: SigilloError.self) { try SQLiteStore(path: fixture.databasePath, vault: nil) }
        #expect(refused?.message.contains("in clear") == true)
        let upgraded = try SQLiteStore(path: fixture.databasePath, vault: try await SeedVault.open(token: fixture.token.token))
        #expect(try await upgraded.activeOTPDevice(holderID: holder.holder.id)?.secret == holder.secret)
        #expect(try await upgraded.hardwareToken(serial: "HW-77")?.seed == hardwareSeed)
        let raw = try databaseBytes(fixture.databasePath)
        #expect(raw.range(of: Data(holder.secret)) == nil)
        #expect(raw.range(of: Data(hardwareSeed)) == nil)
    }
}
