import Crypto
import Foundation
import PKCS11
import SigilloTestSupport
import Testing

@Suite("Token: holder keys wrapped under the KEK")
struct WrappedKeyTests {
    @Test("every algorithm: generated wrapped, nothing left in the token, signatures verify", arguments: TokenTests.cases.indices)
    func generateWrappedAndSign(caseIndex: Int) async throws {
        let (algorithm, mechanisms) = TokenTests.cases[caseIndex]
        let fixture = try TestToken()
        #expect(try await fixture.token.createKEK())
        let wrapped = try await fixture.token.generateWrappedKeyPair(credential: "c-\(algorithm.rawValue)", algorithm: algorithm)
        #expect(wrapped.algorithm == algorithm)
        #expect(wrapped.mechanism == .aesKeyWrapPad)
        #expect(try WrappedKey(encoded: wrapped.encoded, publicKey: wrapped.publicKey) == wrapped)
        // The session objects are gone: no key with the credential's id in the token.
        #expect(try await !fixture.token.containsKey(id: "c-\(algorithm.rawValue)"))
        let signer = Signer(token: fixture.token)
        for mechanism in mechanisms {
            let message = Data("document for \(mechanism)".utf8)
            let hashed = digest(message, mechanism.hash)
            let signature = try await signer.sign(digests: [hashed], credential: "c-\(algorithm.rawValue)", wrapped: wrapped, mechanism: mechanism)[0]
            #expect(try verify(signature, message: message, publicKey: wrapped.publicKey, mechanism: mechanism), "swift-crypto rejects \(mechanism)")
            #expect(try opensslVerify(signature, digest: hashed, publicKey: wrapped.publicKey, mechanism: mechanism, in: fixture.directory), "openssl rejects \(mechanism)")
            #expect(try !verify(signature, message: Data("other".utf8), publicKey: wrapped.publicKey, mechanism: mechanism))
        }
        // Unwrapped once per worker at most, then found in the cache.
        let statistics = fixture.token.unwrapStatistics
        #expect(statistics.unwraps >= 1 && statistics.unwraps <= fixture.token.sessionCount)
        #expect(statistics.unwraps + statistics.hits == mechanisms.count)
    }

    @Test("the KEK is AES-256, sensitive, non-extractable, wrap/unwrap only; created once")
    func kekAttributes() async throws {
        let fixture = try TestToken()
        await #expect(throws: PKCS11Error.self) { try await fixture.token.checkKEK() }
        #expect(try await fixture.token.createKEK())
        #expect(try await !fixture.token.createKEK())
        try await fixture.token.checkKEK()
        let listed = try run("pkcs11-tool", ["--module", TestHSM.modulePath, "--token-label", fixture.label, "--login", "--pin", fixture.userPIN, "--list-objects", "--type", "secrkey"], environment: try fixture.isolatedEnvironment())
        #expect(listed.status == 0, "\(listed.output)")
        let kek = try #require(listed.output.components(separatedBy: "Secret Key Object").first { $0.contains("label:      sigillo-kek\n") })
        #expect(kek.contains("AES length 32"), "\(kek)")
        #expect(kek.contains("Usage:      wrap, unwrap"), "\(kek)")
        #expect(!kek.contains("encrypt") && !kek.contains("decrypt"), "\(kek)")
        #expect(kek.contains("sensitive") && kek.contains("never extractable"), "\(kek)")
    }

    @Test("a wrapped-key generation fails clearly without a KEK")
    func noKEK() async throws {
        let fixture = try TestToken()
        let error = await #expect(throws: PKCS11Error.self) { try await fixture.token.generateWrappedKeyPair(credential: "c", algorithm: .ecP256) }
        #expect(error?.code == .keyNotFound)
    }

    @Test("LRU: keys past the cache size are evicted (session objects destroyed) and unwrapped again on use")
    func evictionThenReunwrap() async throws {
        let fixture = try TestToken(sessions: 1, unwrappedKeyCacheSize: 2)
        try await fixture.token.createKEK()
        let signer = Signer(token: fixture.token)
        var keys: [(String, WrappedKey)] = []
        for index in 0..<3 {
            let id = "c-\(index)"
            keys.append((id, try await fixture.token.generateWrappedKeyPair(credential: id, algorithm: .ecP256)))
        }
        let hashed = Array(SHA256.hash(data: Data("doc".utf8)))
        func sign(_ index: Int) async throws {
            let signature = try await signer.sign(digests: [hashed], credential: keys[index].0, wrapped: keys[index].1, mechanism: .ecdsa(.sha256))[0]
            #expect(try verify(signature, message: Data("doc".utf8), publicKey: keys[index].1.publicKey, mechanism: .ecdsa(.sha256)))
        }
        try await sign(0)
        try await sign(1)
        try await sign(0)  // a hit
        #expect(fixture.token.unwrapStatistics == UnwrapStatistics(hits: 1, unwraps: 2, evictions: 0, refusals: 0))
        try await sign(2)  // evicts 1, the least recently used
        #expect(fixture.token.unwrapStatistics == UnwrapStatistics(hits: 1, unwraps: 3, evictions: 1, refusals: 0))
        #expect(try await self.sessionPrivateKeys(fixture) == 2, "the evicted session object must be destroyed")
        try await sign(0)  // still cached
        try await sign(1)  // unwrapped again
        #expect(fixture.token.unwrapStatistics == UnwrapStatistics(hits: 2, unwraps: 4, evictions: 2, refusals: 0))
        #expect(try await self.sessionPrivateKeys(fixture) == 2)
    }

    @Test("a tampered blob, a blob moved to another credential and a blob of another token's KEK are refused")
    func refusedBlobs() async throws {
        let fixture = try TestToken(sessions: 1)
        try await fixture.token.createKEK()
        let signer = Signer(token: fixture.token)
        let hashed = Array(SHA256.hash(data: Data("doc".utf8)))
        let mine = try await fixture.token.generateWrappedKeyPair(credential: "c-mine", algorithm: .ecP256)
        let theirs = try await fixture.token.generateWrappedKeyPair(credential: "c-theirs", algorithm: .ecP256)
        _ = try await signer.sign(digests: [hashed], credential: "c-mine", wrapped: mine, mechanism: .ecdsa(.sha256))

        func refused(_ wrapped: WrappedKey, as credential: String) async {
            let error = await #expect(throws: PKCS11Error.self) {
                try await signer.sign(digests: [hashed], credential: credential, wrapped: wrapped, mechanism: .ecdsa(.sha256))
            }
            #expect(error?.code == .wrappedKeyInvalid, "\(String(describing: error))")
        }
        // One bit of the blob flipped (the stored form edited as an attacker with the database would).
        var encoded = mine.encoded
        encoded[encoded.count - 40] ^= 0x01
        await refused(try WrappedKey(encoded: encoded, publicKey: mine.publicKey), as: "c-mine")
        // The binding itself altered.
        encoded = mine.encoded
        encoded[encoded.count - 1] ^= 0x80
        await refused(try WrappedKey(encoded: encoded, publicKey: mine.publicKey), as: "c-mine")
        // Another credential's public key beside my blob.
        await refused(try WrappedKey(encoded: mine.encoded, publicKey: theirs.publicKey), as: "c-mine")
        // Their blob (and binding) copied into my row: cached or not, never used for me.
        await refused(theirs, as: "c-mine")
        // A blob from another token: its binding does not verify here, and its KEK is not this token's.
        let other = try TestToken(sessions: 1)
        try await other.token.createKEK()
        let foreign = try await other.token.generateWrappedKeyPair(credential: "c-mine", algorithm: .ecP256)
        await refused(foreign, as: "c-mine")
        #expect(fixture.token.unwrapStatistics.refusals == 5)
        // The cached key of c-mine still signs: refusals left it alone.
        _ = try await signer.sign(digests: [hashed], credential: "c-mine", wrapped: mine, mechanism: .ecdsa(.sha256))
        // Garbage in the column is a clear error, not a crash.
        #expect(throws: PKCS11Error.self) { try WrappedKey(encoded: [1, 2, 3], publicKey: mine.publicKey) }
        #expect(throws: PKCS11Error.self) { try WrappedKey(encoded: mine.encoded + [0], publicKey: mine.publicKey) }
    }

    @Test("another token's KEK cannot unwrap a blob, even with a valid binding")
    func foreignKEKRefusedByTheToken() async throws {
        // Two tokens that share nothing: the binding check refuses first; the token itself refuses the blob too.
        let first = try TestToken(sessions: 1)
        let second = try TestToken(sessions: 1)
        try await first.token.createKEK()
        try await second.token.createKEK()
        let wrapped = try await first.token.generateWrappedKeyPair(credential: "c", algorithm: .ecP384)
        let rv: ReturnValue? = try await second.token.withSession { session throws(PKCS11Error) in
            let kek = try session.findObjects([.objectClass(.secretKey), .bytes(.id, Array("sigillo-kek".utf8))])[0]
            do throws(PKCS11Error) {
                _ = try session.unwrapPrivateKey(wrapped.blob, kek: kek, mechanism: wrapped.mechanism, algorithm: wrapped.algorithm, id: [0x63])
                return nil
            } catch {
                return error.rv
            }
        }
        #expect(rv != nil, "another token's KEK unwrapped the blob")
    }

    @Test("eviction after revocation: the unwrapped session object is destroyed before the worker's next job")
    func evictOnRevocation() async throws {
        let fixture = try TestToken(sessions: 1)
        try await fixture.token.createKEK()
        let signer = Signer(token: fixture.token)
        let hashed = Array(SHA256.hash(data: Data("doc".utf8)))
        let wrapped = try await fixture.token.generateWrappedKeyPair(credential: "c-r", algorithm: .ecP256)
        _ = try await signer.sign(digests: [hashed], credential: "c-r", wrapped: wrapped, mechanism: .ecdsa(.sha256))
        #expect(try await self.sessionPrivateKeys(fixture) == 1)
        fixture.token.evictUnwrapped(credential: "c-r")
        let other = try await fixture.token.generateWrappedKeyPair(credential: "c-o", algorithm: .ecP256)
        _ = try await signer.sign(digests: [hashed], credential: "c-o", wrapped: other, mechanism: .ecdsa(.sha256))
        #expect(try await self.sessionPrivateKeys(fixture) == 1, "c-r's unwrapped key must be gone")
        _ = try await signer.sign(digests: [hashed], credential: "c-r", wrapped: wrapped, mechanism: .ecdsa(.sha256))
        #expect(fixture.token.unwrapStatistics.unwraps == 3)
    }

    /// Private keys the token holds as session objects (the unwrapped ones).
    private func sessionPrivateKeys(_ fixture: TestToken) async throws -> Int {
        try await fixture.token.withSession { session throws(PKCS11Error) in
            try session.findObjects([.objectClass(.privateKey), .bool(.token, false)]).count
        }
    }
}
