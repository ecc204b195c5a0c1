import Foundation
import GRDB
import PKCS11
import SigilloDomain
import SigilloSQLite
import SigilloPostgres
import Logging
import SigilloTestSupport
import Testing

/// Every store implementation the contract suite holds to the same behaviour. A new implementation (PostgreSQL) is
/// one more case here and one more branch in `makeStore`.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// `SQLiteStore(path:vault:)`: a WAL `DatabasePool` on a file, as the server runs it.
    case sqliteFile
    /// `SQLiteStore(writer:vault:)` on an in-memory `DatabaseQueue`.
    case sqliteMemory
    /// `PostgresStore` on a new database of a real PostgreSQL server the tests started (`TestPostgres.shared`).
    case postgres

    var testDescription: String { self.rawValue }
}

/// A fresh store of `kind` with its own SoftHSM token (whose seed key seals the OTP seeds) and its own folder.
func makeStore(_ kind: StoreKind) async throws -> StoreFixture {
    let token = try TestToken(sessions: 2)
    let vault = try await SeedVault.open(token: token.token)
    let store: any Store
    switch kind {
    case .sqliteFile:
        store = try SQLiteStore(path: token.directory.appendingPathComponent("store.sqlite").path, vault: vault)
    case .sqliteMemory:
        store = try SQLiteStore(writer: DatabaseQueue(configuration: SQLiteStore.makeConfiguration()), vault: vault)
    case .postgres:
        let settings = try await TestPostgres.shared.makeDatabase()
        // Warnings only (a failure of the pool says why), on standard error.
        var logger = Logger(label: "test-store", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = .warning
        store = try await PostgresStore(settings: settings, vault: vault, logger: logger)
    }
    return StoreFixture(kind: kind, store: store, token: token)
}

/// A store under test and what it needs to stay alive, with builders of valid records.
struct StoreFixture: Sendable {
    let kind: StoreKind
    let store: any Store
    /// Keeps the token, and the folder the file database lives in, until the test ends.
    let token: TestToken

    /// The time every test starts at (whole seconds: the store keeps seconds or milliseconds). Tests move it by hand.
    static let now = Date(timeIntervalSince1970: 1_767_225_600)
    var now: Date { Self.now }

    /// A new holder (not stored) with a unique email, mobile number, fiscal code and, if asked, username.
    func makeHolder(state: HolderState = .created, username: String? = nil) -> Holder {
        let unique = UUID().uuidString.prefix(8).lowercased()
        return Holder(
            id: UUID().uuidString.lowercased(), username: username, givenName: "Mario", surname: "Rossi", fiscalCode: TestData.fiscalCode(),
            email: "mario.\(unique)@example.it", mobile: randomMobile(), state: state, createdAt: self.now)
    }

    /// A new holder, stored.
    func newHolder(state: HolderState = .created, username: String? = nil) async throws -> Holder {
        let holder = self.makeHolder(state: state, username: username)
        try await self.store.createHolder(holder)
        return holder
    }

    /// An invited holder and their unused invitation code hash.
    func invitedHolder() async throws -> (holder: Holder, codeHash: [UInt8]) {
        let holder = try await self.newHolder(state: .invited)
        let codeHash = randomBytes(32)
        try await self.store.createInvitation(Invitation(codeHash: codeHash, holderID: holder.id, createdAt: self.now, expiresAt: self.now.addingTimeInterval(86_400)))
        return (holder, codeHash)
    }

    func makeDevice(holderID: String, kind: OTPKind = .totp) -> OTPDevice {
        OTPDevice(id: UUID().uuidString.lowercased(), holderID: holderID, kind: kind, secret: randomBytes(20))
    }

    func makeCredential(holderID: String, multisign: Int = 10) -> Credential {
        Credential(
            id: UUID().uuidString.lowercased(), holderID: holderID, keyAlgorithm: .ecP256, tokenKeyID: UUID().uuidString.lowercased(),
            certificateDER: randomBytes(40), serialNumber: randomHex(16), notBefore: self.now.addingTimeInterval(-86_400),
            notAfter: self.now.addingTimeInterval(365 * 86_400), status: .active, multisign: multisign)
    }

    /// A holder activated through an invitation: active, with a username, an OTP device of `kind` and an active credential.
    func activeHolder(device kind: OTPKind = .totp) async throws -> (holder: Holder, device: OTPDevice, credential: Credential) {
        let (holder, codeHash) = try await self.invitedHolder()
        let device = self.makeDevice(holderID: holder.id, kind: kind)
        let credential = self.makeCredential(holderID: holder.id)
        try await self.store.completeActivation(
            codeHash: codeHash, at: self.now, username: "user-\(UUID().uuidString.prefix(8).lowercased())", passwordHash: "argon2-hash", device: device,
            credential: credential)
        return (holder, device, credential)
    }

    /// A stored SAD for `credential`, unused, allowing `numSignatures`, expiring `lifetime` seconds from now.
    func newSAD(_ credential: Credential, numSignatures: Int = 1, lifetime: TimeInterval = 300) async throws -> SADRecord {
        let sad = SADRecord(
            idHash: randomBytes(32), holderID: credential.holderID, credentialID: credential.id, hashAlgorithm: .sha256,
            hashes: (0..<numSignatures).map { _ in randomBytes(32) }, numSignatures: numSignatures, used: 0, expiresAt: self.now.addingTimeInterval(lifetime))
        try await self.store.insertSAD(sad)
        return sad
    }
}

func randomBytes(_ count: Int) -> [UInt8] {
    (0..<count).map { _ in UInt8.random(in: 0...255) }
}

/// Upper-case hex, as certificate serial numbers are stored.
func randomHex(_ bytes: Int) -> String {
    randomBytes(bytes).map { String(format: "%02X", $0) }.joined()
}

func randomMobile() -> String {
    "+393" + String(format: "%09d", Int.random(in: 0..<1_000_000_000))
}

/// Runs `body` `count` times at once (task group) and returns every result, in completion order.
func concurrently<T: Sendable>(_ count: Int = 20, _ body: @escaping @Sendable (Int) async throws -> T) async throws -> [T] {
    try await withThrowingTaskGroup(of: T.self) { group in
        for index in 0..<count {
            group.addTask { try await body(index) }
        }
        var results: [T] = []
        for try await result in group {
            results.append(result)
        }
        return results
    }
}

/// Runs `body` and gives back the `SigilloError` it threw (other errors propagate), or nil when it returned.
func sigilloError(_ body: () async throws -> Void) async throws -> SigilloError? {
    do {
        try await body()
        return nil
    } catch let error as SigilloError {
        return error
    }
}
