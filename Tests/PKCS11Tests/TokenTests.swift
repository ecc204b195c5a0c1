import Crypto
import _CryptoExtras
import Foundation
import PKCS11
import SigilloTestSupport
import Testing

/// Verifies `signature` over `message` (whose digest was signed) with swift-crypto, independently of the token.
func verify(_ signature: [UInt8], message: Data, publicKey spki: [UInt8], mechanism: SignatureMechanism) throws -> Bool {
    switch mechanism {
    case .ecdsa(.sha256):
        let key = try P256.Signing.PublicKey(derRepresentation: spki)
        return key.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: signature), for: SHA256.hash(data: message))
    case .ecdsa(.sha384):
        let key = try P384.Signing.PublicKey(derRepresentation: spki)
        return key.isValidSignature(try P384.Signing.ECDSASignature(derRepresentation: signature), for: SHA384.hash(data: message))
    case .rsaPKCS1v15(let hash), .rsaPSS(let hash):
        let key = try _RSA.Signing.PublicKey(derRepresentation: spki)
        let rsa = _RSA.Signing.RSASignature(rawRepresentation: signature)
        let padding: _RSA.Signing.Padding = mechanism == .rsaPSS(hash) ? .PSS : .insecurePKCS1v1_5
        switch hash {
        case .sha256: return key.isValidSignature(rsa, for: SHA256.hash(data: message), padding: padding)
        case .sha384: return key.isValidSignature(rsa, for: SHA384.hash(data: message), padding: padding)
        case .sha512: return key.isValidSignature(rsa, for: SHA512.hash(data: message), padding: padding)
        }
    default:
        Issue.record("no verifier for \(mechanism)")
        return false
    }
}

func digest(_ message: Data, _ hash: HashAlgorithm) -> [UInt8] {
    switch hash {
    case .sha256: return Array(SHA256.hash(data: message))
    case .sha384: return Array(SHA384.hash(data: message))
    case .sha512: return Array(SHA512.hash(data: message))
    }
}

/// Verifies with `openssl pkeyutl -verify` on the exported public key: a second, independent verifier.
func opensslVerify(_ signature: [UInt8], digest: [UInt8], publicKey spki: [UInt8], mechanism: SignatureMechanism, in directory: URL) throws -> Bool {
    let key = directory.appendingPathComponent("pub.der")
    let sig = directory.appendingPathComponent("sig.bin")
    let dgst = directory.appendingPathComponent("digest.bin")
    try Data(spki).write(to: key)
    try Data(signature).write(to: sig)
    try Data(digest).write(to: dgst)
    var arguments = ["pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", key.path, "-in", dgst.path, "-sigfile", sig.path]
    switch mechanism {
    case .ecdsa(let hash): arguments += ["-pkeyopt", "digest:\(hash.rawValue)"]
    case .rsaPKCS1v15(let hash): arguments += ["-pkeyopt", "rsa_padding_mode:pkcs1", "-pkeyopt", "digest:\(hash.rawValue)"]
    case .rsaPSS(let hash):
        arguments += ["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "digest:\(hash.rawValue)", "-pkeyopt", "rsa_pss_saltlen:digest", "-pkeyopt", "rsa_mgf1_md:\(hash.rawValue)"]
    }
    let result = try run("openssl", arguments)
    return result.status == 0 && result.output.contains("Signature Verified Successfully")
}

@Suite("Token: keys and signatures")
struct TokenTests {
    static let cases: [(KeyAlgorithm, [SignatureMechanism])] = [
        (.ecP256, [.ecdsa(.sha256)]),
        (.ecP384, [.ecdsa(.sha384)]),
        (.rsa2048, [.rsaPKCS1v15(.sha256), .rsaPKCS1v15(.sha384), .rsaPKCS1v15(.sha512), .rsaPSS(.sha256), .rsaPSS(.sha512)]),
        (.rsa3072, [.rsaPKCS1v15(.sha256), .rsaPSS(.sha384)]),
        (.rsa4096, [.rsaPKCS1v15(.sha512), .rsaPSS(.sha256)]),
    ]

    @Test("generate, export, sign and verify independently", arguments: Self.cases.indices)
    func generateAndSign(caseIndex: Int) async throws {
        let (algorithm, mechanisms) = Self.cases[caseIndex]
        let fixture = try TestToken()
        let spki = try await fixture.token.generateKeyPair(id: "cred-\(algorithm.rawValue)", algorithm: algorithm)
        #expect(try await fixture.token.publicKey(id: "cred-\(algorithm.rawValue)") == spki)
        #expect(try await fixture.token.keyAlgorithm(id: "cred-\(algorithm.rawValue)") == algorithm)
        let signer = Signer(token: fixture.token)
        for mechanism in mechanisms {
            let message = Data("document for \(mechanism)".utf8)
            let hashed = digest(message, mechanism.hash)
            let signature = try await signer.sign(digest: hashed, credential: "cred-\(algorithm.rawValue)", mechanism: mechanism)
            #expect(try verify(signature, message: message, publicKey: spki, mechanism: mechanism), "swift-crypto rejects \(mechanism)")
            #expect(try opensslVerify(signature, digest: hashed, publicKey: spki, mechanism: mechanism, in: fixture.directory), "openssl rejects \(mechanism)")
            // A signature over another digest must not verify: the checks above can fail.
            #expect(try !verify(signature, message: Data("other".utf8), publicKey: spki, mechanism: mechanism))
            if algorithm.isRSA {
                #expect(signature.count == algorithm.bits / 8)
            }
        }
    }

    @Test("private keys are sensitive and not extractable")
    func nonExtractable() async throws {
        let fixture = try TestToken()
        _ = try await fixture.token.generateKeyPair(id: "ec", algorithm: .ecP256)
        _ = try await fixture.token.generateKeyPair(id: "rsa", algorithm: .rsa2048)
        for (id, secret) in [("ec", AttributeType.value), ("rsa", AttributeType.privateExponent)] {
            let handle = try await fixture.token.keyEntry(id: id).handle
            let outcome: (rv: ReturnValue?, sensitive: [UInt8], extractable: [UInt8]) = try await fixture.token.withSession { session throws(PKCS11Error) in
                var rv: ReturnValue?
                do throws(PKCS11Error) { _ = try session.attribute(secret, of: handle) } catch { rv = error.rv }
                return (rv, try session.attribute(.sensitive, of: handle), try session.attribute(.extractable, of: handle))
            }
            #expect(outcome.rv == .attributeSensitive, "reading the secret of \(id) must fail with CKR_ATTRIBUTE_SENSITIVE")
            #expect(outcome.sensitive == [1])
            #expect(outcome.extractable == [0])
        }
        // An independent PKCS#11 client refuses too.
        let hexID = Array("ec".utf8).map { String(format: "%02x", $0) }.joined()
        let listed = try run("pkcs11-tool", ["--module", TestHSM.modulePath, "--token-label", fixture.label, "--login", "--pin", fixture.userPIN, "--list-objects", "--type", "privkey"], environment: try fixture.isolatedEnvironment())
        #expect(listed.status == 0, "\(listed.output)")
        #expect(listed.output.contains("ID:         \(hexID)"))
        #expect(listed.output.contains("Access:     sensitive, always sensitive, never extractable"), "\(listed.output)")
        let read = try run("pkcs11-tool", ["--module", TestHSM.modulePath, "--token-label", fixture.label, "--login", "--pin", fixture.userPIN, "--read-object", "--type", "privkey", "--id", hexID], environment: try fixture.isolatedEnvironment())
        #expect(read.status != 0 || read.output.contains("not (yet) supported"), "pkcs11-tool read a private key: \(read.output)")
    }

    @Test("10,000 digests signed in parallel, every signature valid and in order")
    func parallelBatch() async throws {
        let fixture = try TestToken(sessions: 4)
        let spki = try await fixture.token.generateKeyPair(id: "batch", algorithm: .ecP256)
        let key = try P256.Signing.PublicKey(derRepresentation: spki)
        let digests = (0..<10_000).map { Array(SHA256.hash(data: Data("message \($0)".utf8))) }
        let signatures = try await Signer(token: fixture.token).sign(digests: digests, credential: "batch", mechanism: .ecdsa(.sha256))
        #expect(signatures.count == digests.count)
        var invalid = 0
        for (index, signature) in signatures.enumerated() {
            let ok = (try? key.isValidSignature(P256.Signing.ECDSASignature(derRepresentation: signature), for: SHA256.hash(data: Data("message \(index)".utf8)))) ?? false
            if !ok { invalid += 1 }
        }
        #expect(invalid == 0)
    }

    @Test("concurrent batches from many tasks all complete with valid signatures")
    func concurrentBatches() async throws {
        let fixture = try TestToken(sessions: 2)
        let spki = try await fixture.token.generateKeyPair(id: "multi", algorithm: .ecP256)
        let signer = Signer(token: fixture.token)
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for task in 0..<32 {
                group.addTask {
                    let messages = (0..<(1 + task % 7)).map { Data("t\(task)-\($0)".utf8) }
                    let signatures = try await signer.sign(digests: messages.map { Array(SHA256.hash(data: $0)) }, credential: "multi", mechanism: .ecdsa(.sha256))
                    let key = try P256.Signing.PublicKey(derRepresentation: spki)
                    return try zip(signatures, messages).allSatisfy { try key.isValidSignature(P256.Signing.ECDSASignature(derRepresentation: $0), for: SHA256.hash(data: $1)) }
                }
            }
            for try await ok in group { #expect(ok) }
        }
    }

    @Test("the handle cache follows create and destroy")
    func cacheFollowsCreateAndDestroy() async throws {
        let fixture = try TestToken()
        let signer = Signer(token: fixture.token)
        let hashed = Array(SHA256.hash(data: Data("x".utf8)))
        _ = try await fixture.token.generateKeyPair(id: "a", algorithm: .ecP256)
        _ = try await signer.sign(digest: hashed, credential: "a", mechanism: .ecdsa(.sha256))
        #expect(try await fixture.token.destroyKeyPair(id: "a") == 2)
        await #expect(throws: PKCS11Error.self) { try await signer.sign(digest: hashed, credential: "a", mechanism: .ecdsa(.sha256)) }
        #expect(try await !fixture.token.containsKey(id: "a"))
        // Other keys are created meanwhile; a new key under the same id is the one used, never a stale handle.
        _ = try await fixture.token.generateKeyPair(id: "b", algorithm: .ecP256)
        let second = try await fixture.token.generateKeyPair(id: "a", algorithm: .ecP384)
        let digest384 = Array(SHA384.hash(data: Data("x".utf8)))
        let signature = try await signer.sign(digest: digest384, credential: "a", mechanism: .ecdsa(.sha384))
        #expect(try verify(signature, message: Data("x".utf8), publicKey: second, mechanism: .ecdsa(.sha384)))
        await #expect(throws: PKCS11Error.self) { _ = try await fixture.token.generateKeyPair(id: "a", algorithm: .ecP256) }
    }

    @Test("sessions closed under the pool are re-opened and logged in again")
    func recoversFromLostSessions() async throws {
        let fixture = try TestToken(sessions: 2)
        let spki = try await fixture.token.generateKeyPair(id: "k", algorithm: .ecP256)
        let signer = Signer(token: fixture.token)
        let message = Data("after".utf8)
        // Close every session of the token behind the pool's back (as a removed device would) — this also logs out.
        try fixture.token.module.closeAllSessions(slot: fixture.token.slot)
        let signatures = try await signer.sign(digests: Array(repeating: Array(SHA256.hash(data: message)), count: 20), credential: "k", mechanism: .ecdsa(.sha256))
        for signature in signatures {
            #expect(try verify(signature, message: message, publicKey: spki, mechanism: .ecdsa(.sha256)))
        }
    }
}

@Suite("Token: clear errors")
struct TokenErrorTests {
    @Test func wrongPIN() async throws {
        let fixture = try TestToken.unopened()
        let wrong = fixture.directory.appendingPathComponent("wrong.pin")
        try Data("not-the-pin".utf8).write(to: wrong)
        var configuration = fixture.configuration
        configuration.pin = .file(wrong.path)
        let error = #expect(throws: PKCS11Error.self) { _ = try Token.open(configuration) }
        #expect(error?.code == .pinIncorrect)
        #expect(error?.description.contains("C_Login: CKR_PIN_INCORRECT") == true)
        #expect(error?.description.contains("not-the-pin") == false)
    }

    @Test func missingPINSource() async throws {
        let fixture = try TestToken()
        var configuration = fixture.configuration
        configuration.pin = .file(fixture.directory.appendingPathComponent("absent.pin").path)
        #expect(await pkcs11ErrorCode { _ = try Token.open(configuration) } == .pinUnavailable)
        configuration.pin = .environment("SIGILLO_TEST_NO_SUCH_VARIABLE")
        #expect(await pkcs11ErrorCode { _ = try Token.open(configuration) } == .pinUnavailable)
    }

    @Test func missingModule() async throws {
        let configuration = TokenConfiguration(modulePath: "/nonexistent/libpkcs11.so", tokenLabel: "x", pin: .environment("X"))
        #expect(await pkcs11ErrorCode { _ = try Token.open(configuration) } == .moduleLoadFailed)
        let notAModule = TokenConfiguration(modulePath: "/usr/lib/x86_64-linux-gnu/libz.so.1", tokenLabel: "x", pin: .environment("X"))
        if FileManager.default.fileExists(atPath: notAModule.modulePath) {
            #expect(await pkcs11ErrorCode { _ = try Token.open(notAModule) } == .moduleLoadFailed)
        }
    }

    @Test func missingToken() async throws {
        let fixture = try TestToken()
        var configuration = fixture.configuration
        configuration.tokenLabel = "no-such-token"
        #expect(await pkcs11ErrorCode { _ = try Token.open(configuration) } == .tokenNotFound)
    }

    @Test func unknownCredentialAndBadInput() async throws {
        let fixture = try TestToken()
        let signer = Signer(token: fixture.token)
        _ = try await fixture.token.generateKeyPair(id: "ec", algorithm: .ecP256)
        let good = [UInt8](repeating: 7, count: 32)
        #expect(await pkcs11ErrorCode { _ = try await signer.sign(digest: good, credential: "nobody", mechanism: .ecdsa(.sha256)) } == .keyNotFound)
        #expect(await pkcs11ErrorCode { _ = try await signer.sign(digest: [1, 2, 3], credential: "ec", mechanism: .ecdsa(.sha256)) } == .invalidDigestLength)
        #expect(await pkcs11ErrorCode { _ = try await signer.sign(digests: [good, [UInt8](repeating: 1, count: 48)], credential: "ec", mechanism: .ecdsa(.sha256)) } == .invalidDigestLength)
        #expect(await pkcs11ErrorCode { _ = try await signer.sign(digest: good, credential: "ec", mechanism: .rsaPKCS1v15(.sha256)) } == .mechanismMismatch)
        #expect(try await signer.sign(digests: [], credential: "ec", mechanism: .ecdsa(.sha256)).isEmpty)
    }

    @Test func closedPool() async throws {
        let fixture = try TestToken()
        fixture.token.close()
        #expect(await pkcs11ErrorCode { _ = try await fixture.token.containsKey(id: "x") } == .tokenUnavailable)
    }

    @Test func uriParsing() throws {
        let configuration = try TokenConfiguration(uri: "pkcs11:token=Sigillo%20Dev;manufacturer=SoftHSM?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/sigillo/pin", sessions: 3)
        #expect(configuration.tokenLabel == "Sigillo Dev")
        #expect(configuration.modulePath == "/usr/lib/softhsm/libsofthsm2.so")
        #expect(configuration.pin == .file("/etc/sigillo/pin"))
        #expect(configuration.sessions == 3)
        let env = try TokenConfiguration(uri: "pkcs11:token=a", modulePath: "/m.so", pin: .environment("P"))
        #expect(env.pin == .environment("P"))
        #expect(throws: PKCS11Error.self) { try TokenConfiguration(uri: "pkcs11:token=a?module-path=/m.so&pin-value=1234") }
        #expect(throws: PKCS11Error.self) { try TokenConfiguration(uri: "pkcs11:object=x?module-path=/m.so&pin-source=/p") }
        #expect(throws: PKCS11Error.self) { try TokenConfiguration(uri: "http://example") }
        #expect(throws: PKCS11Error.self) { try TokenConfiguration(uri: "pkcs11:token=a?pin-source=/p") }
    }
}

/// The `PKCS11Error` code `body` threw; nil when it returned (any other error is recorded as a test issue).
func pkcs11ErrorCode(_ body: () async throws -> Void) async -> PKCS11Error.Code? {
    do {
        try await body()
        return nil
    } catch let error as PKCS11Error {
        return error.code
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}
