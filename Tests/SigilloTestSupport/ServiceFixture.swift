import Crypto
import Foundation
import PKCS11
import SigilloDomain
import SigilloPKI
import SigilloSQLite
import Synchronization
import X509

/// The development notifier (the outbox file), remembering messages so tests can read SMS codes.
public final class CapturingNotifier: Notifier {
    private let messages = Mutex<[OutgoingMessage]>([])
    public let outbox: OutboxNotifier
    public init(outbox: OutboxNotifier) { self.outbox = outbox }
    public func send(_ message: OutgoingMessage) async throws {
        try await self.outbox.send(message)
        self.messages.withLock { $0.append(message) }
    }
    public var last: OutgoingMessage? { self.messages.withLock { $0.last } }
    /// Every mail sent so far, oldest first.
    public var mails: [OutgoingMessage] { self.messages.withLock { $0.filter { $0.channel == "email" } } }
    /// The single-use code in the last mail's link (`...?code=XYZ`).
    public var lastLinkCode: String? { self.mails.last.flatMap { Self.linkCode(in: $0.body) } }
    /// The single-use code of the first `…?code=XYZ` link in a mail body.
    public static func linkCode(in body: String) -> String? {
        body.range(of: "?code=").map { String(body[$0.upperBound...].prefix { !$0.isWhitespace }) }
    }
    public var lastCode: String? { self.last.flatMap(Self.code) }
    /// Every SMS sent so far, oldest first.
    public var texts: [OutgoingMessage] { self.messages.withLock { $0.filter { $0.channel == "sms" } } }
    /// The code in an SMS ("Sigillo: 123456 is your code to …").
    public static func code(_ message: OutgoingMessage) -> String? { self.code(in: message.body) }
    /// The code (6 to 8 digits) in an SMS text.
    public static func code(in text: String) -> String? {
        text.split(whereSeparator: { !$0.isNumber }).first(where: { (6...8).contains($0.count) }).map(String.init)
    }
}

/// A fresh token, database, CA and service for one test.
public struct ServiceFixture {
    public let token: TestToken
    public let store: SQLiteStore
    public let ca: CertificateAuthority
    /// The CA's CRL, as the server builds it.
    public let crl: CRLPublisher
    public let clock: TestClock
    public let notifier: CapturingNotifier
    public let service: Domain
    public var outboxFile: String { self.token.directory.appendingPathComponent("outbox.jsonl").path }
    public var databasePath: String { self.token.directory.appendingPathComponent("sigillo.sqlite").path }

    /// - Parameter holderKeys: where holder keys are kept (the KEK is created in the token for `wrapped`).
    public init(multisign: Int = 100, holderKeys: HolderKeyStorage = .wrapped, sessions: Int = 2,
                unwrappedKeyCacheSize: Int = TokenConfiguration.defaultUnwrappedKeyCacheSize) async throws {
        self.token = try TestToken(sessions: sessions, unwrappedKeyCacheSize: unwrappedKeyCacheSize)
        if holderKeys == .wrapped { try await self.token.token.createKEK() }
        self.store = try SQLiteStore(path: self.token.directory.appendingPathComponent("sigillo.sqlite").path, vault: try await SeedVault.open(token: self.token.token))
        self.clock = TestClock()
        self.ca = try await CertificateAuthority.create(
            token: self.token.token, name: try DistinguishedName { CountryName("IT"); OrganizationName("Sigillo Test"); CommonName("Sigillo Test CA") }, now: self.clock.now.addingTimeInterval(-60))
        self.notifier = CapturingNotifier(outbox: OutboxNotifier(file: self.token.directory.appendingPathComponent("outbox.jsonl").path))
        var settings = DomainSettings(publicBaseURL: "https://127.0.0.1:8443")
        settings.defaultMultisign = multisign
        settings.holderKeys = holderKeys
        // Cheap Argon2 parameters keep the suite fast; the production defaults are tested in PasswordTests.
        self.crl = CRLPublisher(ca: self.ca, store: self.store, clock: self.clock.serviceClock)
        self.service = Domain(
            store: self.store, signer: Signer(token: self.token.token), ca: self.ca, crl: self.crl, settings: settings, notifier: self.notifier,
            passwords: PasswordHasher(parameters: Argon2Parameters(memoryKiB: 1024, iterations: 1, parallelism: 1)), clock: self.clock.serviceClock)
    }

    /// Another `Domain` on this fixture's store, token, CA and clock whose new holder keys go to `holderKeys` (an
    /// installation whose configuration changed), the KEK created for `wrapped`.
    ///
    /// - Parameter token: the token pool it signs with (another `Token.open` of the same token: another node's workers).
    public func domain(holderKeys: HolderKeyStorage, token: Token? = nil) async throws -> Domain {
        if holderKeys == .wrapped { try await self.token.token.createKEK() }
        var settings = self.service.settings
        settings.holderKeys = holderKeys
        return Domain(
            store: self.store, signer: Signer(token: token ?? self.token.token), ca: self.ca, crl: self.crl, settings: settings, notifier: self.notifier,
            passwords: PasswordHasher(parameters: Argon2Parameters(memoryKiB: 1024, iterations: 1, parallelism: 1)), clock: self.clock.serviceClock)
    }

    /// Authorizes and signs `text`'s SHA-256 with the holder's credential `credentialID` (ECDSA P-256); returns the signature.
    public func sign(_ text: String, holder: ActiveHolder, credentialID: String, with domain: Domain? = nil) async throws -> [UInt8] {
        let service = domain ?? self.service
        let digest = Array(SHA256.hash(data: Data(text.utf8)))
        let authorization = try await service.authorization.authorize(holderID: holder.holder.id, credentialID: credentialID, numSignatures: 1, hashes: [digest],
                                                                      hashAlgorithm: .sha256, password: holder.password, otp: self.otp(holder))
        return try await service.signing.signHash(holderID: holder.holder.id, credentialID: credentialID, sad: authorization.sad, hashes: [digest], mechanism: .ecdsa(.sha256))[0]
    }

    public struct ActiveHolder {
        public let holder: Holder
        public let credential: Credential
        public let username: String
        public let password: String
        public let secret: [UInt8]

        public init(holder: Holder, credential: Credential, username: String, password: String, secret: [UInt8]) {
            self.holder = holder
            self.credential = credential
            self.username = username
            self.password = password
            self.secret = secret
        }
    }

    public func newHolder(name: String = "Mario") async throws -> Holder {
        let unique = UUID().uuidString.prefix(8).lowercased()
        return try await self.service.enrollment.createHolder(
            givenName: name, surname: "Rossi", fiscalCode: TestData.fiscalCode(), email: "\(name.lowercased()).\(unique)@example.it",
            mobile: "+39333\(Int.random(in: 1_000_000...9_999_999))", actor: "operator:test", recognized: true)
    }

    /// Creates, invites and activates a holder with a TOTP app; the clock moves one step afterwards.
    public func activeHolder(keyAlgorithm: KeyAlgorithm = .ecP256, name: String = "Mario") async throws -> ActiveHolder {
        let holder = try await self.newHolder(name: name)
        let invitation = try await self.service.enrollment.invite(holderID: holder.id, actor: "operator:test")
        let challenge = try await self.service.enrollment.beginActivation(invitationCode: invitation.code, device: .totp())
        let secret = challenge.secret!
        let username = "\(name.lowercased())-\(UUID().uuidString.prefix(6).lowercased())"
        let password = "correct horse battery"
        let credential = try await self.service.enrollment.completeActivation(
            invitationCode: invitation.code, username: username, password: password, otp: TOTP.code(secret: secret, time: self.clock.now), keyAlgorithm: keyAlgorithm)
        self.clock.advance(30)
        return ActiveHolder(holder: try await self.store.holder(id: holder.id)!, credential: credential, username: username, password: password, secret: secret)
    }

    /// The current TOTP code of a holder's app; moves the clock to the next step so the next call gets a fresh code.
    public func otp(_ holder: ActiveHolder) -> String {
        defer { self.clock.advance(30) }
        return TOTP.code(secret: holder.secret, time: self.clock.now)
    }
}

extension AttemptStore {
    /// Counts one wrong answer against a holder's secret, as a failed check would (reserve, then resolve as wrong).
    @discardableResult
    public func recordWrongAnswer(holderID: String, secret: SecretKind) async throws -> Int {
        _ = try await self.reserveAttempt(holderID: holderID, secret: secret, limit: .max, now: Date(), lease: 60)
        return try await self.resolveAttempt(holderID: holderID, secret: secret, right: false)
    }
}

/// Where a holder's key is, in either storage (`HolderKeyStorage`): tests ask this rather than the token alone.
public enum HolderKeyProbe {
    /// Whether credential `id`'s key exists now: the wrapped key in its row (checked and unwrapped in the token, then
    /// dropped), or its token object.
    public static func exists(_ id: String, store: any CredentialStore, token: Token) async throws -> Bool {
        guard let credential = try await store.credential(id: id) else { return false }
        if let encoded = credential.wrappedKey {
            try await token.verifyWrappedKey(try WrappedKey(encoded: encoded, publicKey: credential.publicKey ?? []), credential: credential.id)
            return true
        }
        return try await token.containsKey(id: credential.tokenKeyID)
    }

    /// The credential's public key (SubjectPublicKeyInfo, DER): beside its wrapped key, or read from its token object.
    public static func publicKey(_ credential: Credential, token: Token) async throws -> [UInt8] {
        if let publicKey = credential.publicKey { return publicKey }
        return try await token.publicKey(id: credential.tokenKeyID)
    }

    /// The credential key's algorithm: as its wrapped key says, or as its token object is.
    public static func algorithm(_ credential: Credential, token: Token) async throws -> KeyAlgorithm {
        if let encoded = credential.wrappedKey { return try WrappedKey(encoded: encoded, publicKey: credential.publicKey ?? []).algorithm }
        return try await token.keyAlgorithm(id: credential.tokenKeyID)
    }
}
