import CArgon2
import Foundation
import SigilloTestSupport
import Testing

@testable import SigilloDomain

/// Cheap parameters so the suite stays fast; the default's cost is exercised once.
private let cheap = Argon2Parameters(memoryKiB: 64, iterations: 1, parallelism: 1)

@Suite struct PasswordHasherTests {
    @Test func hashAndVerify() throws {
        let hasher = PasswordHasher(parameters: cheap)
        let encoded = try hasher.hash("correct horse battery staple")
        #expect(encoded.hasPrefix("$argon2id$v=19$m=64,t=1,p=1$"))
        #expect(hasher.verify("correct horse battery staple", encoded: encoded))
        #expect(!hasher.verify("correct horse battery stapler", encoded: encoded))
        #expect(!hasher.verify("Correct horse battery staple", encoded: encoded))
        #expect(!hasher.verify("", encoded: encoded))
        // Fresh salt each time.
        #expect(try hasher.hash("correct horse battery staple") != encoded)
    }

    @Test func defaultParameters() throws {
        let hasher = PasswordHasher()
        #expect(hasher.parameters == Argon2Parameters(memoryKiB: 19_456, iterations: 2, parallelism: 1))
        let encoded = try hasher.hash("pässwörd 🔑 long enough")
        #expect(PasswordHasher.parameters(of: encoded) == .default)
        #expect(hasher.verify("pässwörd 🔑 long enough", encoded: encoded))
        #expect(!hasher.verify("passwörd 🔑 long enough", encoded: encoded))
        #expect(!hasher.needsRehash(encoded))
    }

    @Test func saltAndHashLengths() throws {
        let encoded = try PasswordHasher(parameters: cheap).hash("x")
        let parsed = try #require(Argon2EncodedHash(encoded))
        #expect(parsed.salt.count == 16)
        #expect(parsed.hash.count == 32)
        #expect(parsed.encoded == encoded)
    }

    @Test func unicodeNormalised() throws {
        let hasher = PasswordHasher(parameters: cheap)
        let composed = "caf\u{E9} cr\u{E8}me br\u{FB}l\u{E9}e"
        let decomposed = "cafe\u{301} cre\u{300}me bru\u{302}le\u{301}e"
        #expect(Array(composed.utf8) != Array(decomposed.utf8))
        #expect(hasher.verify(decomposed, encoded: try hasher.hash(composed)))
    }

    @Test func parametersReadBack() throws {
        let parameters = Argon2Parameters(memoryKiB: 256, iterations: 3, parallelism: 2)
        let encoded = try PasswordHasher(parameters: parameters).hash("secret")
        #expect(encoded.hasPrefix("$argon2id$v=19$m=256,t=3,p=2$"))
        #expect(PasswordHasher.parameters(of: encoded) == parameters)
        // A hasher with other parameters still verifies it, with the stored ones.
        #expect(PasswordHasher().verify("secret", encoded: encoded))
        #expect(PasswordHasher.parameters(of: "nonsense") == nil)
    }

    @Test func needsRehash() throws {
        let old = try PasswordHasher(parameters: cheap).hash("secret")
        let current = PasswordHasher(parameters: Argon2Parameters(memoryKiB: 128, iterations: 1, parallelism: 1))
        #expect(current.needsRehash(old))
        #expect(!current.needsRehash(try current.hash("secret")))
        #expect(!PasswordHasher(parameters: cheap).needsRehash(old))
        // Each parameter counts on its own.
        #expect(PasswordHasher(parameters: Argon2Parameters(memoryKiB: 64, iterations: 2, parallelism: 1)).needsRehash(old))
        #expect(PasswordHasher(parameters: Argon2Parameters(memoryKiB: 64, iterations: 1, parallelism: 2)).needsRehash(old))
        // Higher stored parameters than current: no rehash.
        #expect(!PasswordHasher(parameters: Argon2Parameters(memoryKiB: 32, iterations: 1, parallelism: 1)).needsRehash(old))
        #expect(current.needsRehash("garbage"))
    }

    @Test func malformedHashesRefused() throws {
        let hasher = PasswordHasher(parameters: cheap)
        let good = try hasher.hash("secret")
        let fields = good.split(separator: "$", omittingEmptySubsequences: false).map(String.init)
        let salt = fields[4]
        let hash = fields[5]
        let malformed = [
            "", "$", "secret", "$argon2id$", "$argon2id$v=19$m=64,t=1,p=1$\(salt)",
            "$argon2i$v=19$m=64,t=1,p=1$\(salt)$\(hash)",  // other variant
            "$argon2d$v=19$m=64,t=1,p=1$\(salt)$\(hash)",
            "$argon2id$v=16$m=64,t=1,p=1$\(salt)$\(hash)",  // other version
            "$argon2id$m=64,t=1,p=1$\(salt)$\(hash)",  // no version
            "$argon2id$v=19$m=64,t=1$\(salt)$\(hash)",
            "$argon2id$v=19$t=1,m=64,p=1$\(salt)$\(hash)",
            "$argon2id$v=19$m=064,t=1,p=1$\(salt)$\(hash)",
            "$argon2id$v=19$m=-64,t=1,p=1$\(salt)$\(hash)",
            "$argon2id$v=19$m=64,t=0,p=1$\(salt)$\(hash)",  // t < 1
            "$argon2id$v=19$m=64,t=1,p=0$\(salt)$\(hash)",  // p < 1
            "$argon2id$v=19$m=7,t=1,p=1$\(salt)$\(hash)",  // m < 8p
            "$argon2id$v=19$m=99999999999,t=1,p=1$\(salt)$\(hash)",  // overflow
            "$argon2id$v=19$m=4194304,t=1,p=1$\(salt)$\(hash)",  // 4 GiB: over the verification limit
            "$argon2id$v=19$m=64,t=1000000,p=1$\(salt)$\(hash)",
            "$argon2id$v=19$m=64,t=1,p=1$\(salt)=$\(hash)",  // padding
            "$argon2id$v=19$m=64,t=1,p=1$\(salt)$\(hash)==",
            "$argon2id$v=19$m=64,t=1,p=1$\(salt)$",  // empty hash
            "$argon2id$v=19$m=64,t=1,p=1$$\(hash)",  // empty salt
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$\(hash)",  // 4-byte salt
            "$argon2id$v=19$m=64,t=1,p=1$\(salt)$\(hash)$",
            "$argon2id$v=19$m=64,t=1,p=1$\(salt)$\(hash.replacingOccurrences(of: hash.prefix(1), with: "*"))",
            good + "\0",
            " " + good,
        ]
        for encoded in malformed {
            #expect(!hasher.verify("secret", encoded: encoded), "accepted \(encoded)")
            #expect(Argon2EncodedHash(encoded) == nil || encoded.contains("m=4194304") || encoded.contains("t=1000000"), "parsed \(encoded)")
        }
        // Well-formed but wrong: a truncated hash (3 bytes short), a flipped hash byte.
        #expect(!hasher.verify("secret", encoded: "$argon2id$v=19$m=64,t=1,p=1$\(salt)$\(hash.dropLast(4))"))
        var bytes = try #require(Argon2EncodedHash(good))
        bytes.hash[0] ^= 1
        #expect(!hasher.verify("secret", encoded: bytes.encoded))
        #expect(hasher.verify("secret", encoded: good))
    }

    @Test func interoperatesWithLibargon2Encoding() throws {
        // Our PHC strings are what libargon2 itself writes and verifies, and vice versa.
        let password = Array("interop password".utf8)
        let salt = Array("sixteen byte sal".utf8)
        var buffer = [CChar](repeating: 0, count: 256)
        let status = argon2id_hash_encoded(2, 256, 1, password, password.count, salt, salt.count, 32, &buffer, buffer.count)
        #expect(status == ARGON2_OK.rawValue)
        let reference = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(PasswordHasher(parameters: cheap).verify("interop password", encoded: reference))
        #expect(!PasswordHasher(parameters: cheap).verify("interop passwore", encoded: reference))
        #expect(PasswordHasher.parameters(of: reference) == Argon2Parameters(memoryKiB: 256, iterations: 2, parallelism: 1))

        let ours = try PasswordHasher(parameters: cheap).hash("interop password")
        #expect(argon2id_verify(ours, password, password.count) == ARGON2_OK.rawValue)
    }
}

@Suite struct PasswordPolicyTests {
    @Test func acceptsReasonablePasswords() throws {
        try PasswordPolicy.validate(password: "correct horse", username: "alice")
        try PasswordPolicy.validate(password: "aaaaaaaaab", username: "alice")
        try PasswordPolicy.validate(password: "alice.rossi1", username: "alice.rossi")
    }

    @Test func rejectsShortPasswords() {
        let error = #expect(throws: SigilloError.self) {
            try PasswordPolicy.validate(password: "short9chr", username: "alice")
        }
        #expect(error?.code == .weakPassword)
        #expect(error?.message.contains("10") == true)
        // Characters, not bytes: 9 accented letters are 18 UTF-8 bytes but still too short.
        #expect(throws: SigilloError.self) {
            try PasswordPolicy.validate(password: "ééééééééè", username: "alice")
        }
        #expect(throws: SigilloError.self) {
            try PasswordPolicy.validate(password: "", username: "alice")
        }
    }

    @Test func rejectsUsername() {
        let error = #expect(throws: SigilloError.self) {
            try PasswordPolicy.validate(password: "Maria.Rossi", username: "maria.rossi")
        }
        #expect(error?.code == .weakPassword)
        #expect(error?.message.contains("username") == true)
    }

    @Test func rejectsOneRepeatedCharacter() {
        let error = #expect(throws: SigilloError.self) {
            try PasswordPolicy.validate(password: "xxxxxxxxxxxx", username: "alice")
        }
        #expect(error?.code == .weakPassword)
        #expect(error?.message.contains("repeat") == true)
    }
}

@Suite struct SecretTokenTests {
    @Test("tokens are 43 base64url characters, all different, and none begins with - or _ (command-line arguments)")
    func tokens() {
        let tokens = (0..<4000).map { _ in Secrets.token() }
        #expect(Set(tokens).count == tokens.count)
        #expect(tokens.allSatisfy { $0.count == 43 && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" } })
        #expect(!tokens.contains { $0.hasPrefix("-") || $0.hasPrefix("_") })
        // Both characters still occur inside tokens: the alphabet is whole.
        #expect(tokens.contains { $0.contains("-") } && tokens.contains { $0.contains("_") })
    }
}
