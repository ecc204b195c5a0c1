import Foundation
import SigilloTestSupport
import Testing

@testable import SigilloDomain

/// The repository root, found from this file's path (`<root>/Tests/SigilloDomainTests/OTPTests.swift`).
private let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// RFC 6238 Appendix B seeds: "12345678901234567890" repeated to the hash's output size.
private func rfc6238Seed(_ algorithm: OTPAlgorithm) -> [UInt8] {
    let base = Array("1234567890".utf8)
    let length = algorithm.recommendedSecretLength
    return (0..<length).map { base[$0 % base.count] }
}

private func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

private func randomBytes(_ count: Int) -> [UInt8] {
    (0..<count).map { _ in UInt8.random(in: .min ... .max) }
}

@Suite struct Base32Tests {
    /// RFC 4648 §10.
    static let vectors: [(String, String)] = [
        ("", ""), ("f", "MY======"), ("fo", "MZXQ===="), ("foo", "MZXW6==="), ("foob", "MZXW6YQ="),
        ("fooba", "MZXW6YTB"), ("foobar", "MZXW6YTBOI======"),
    ]

    @Test func rfc4648Vectors() {
        for (plain, encoded) in Self.vectors {
            #expect(Base32.encode(Array(plain.utf8)) == encoded)
            #expect(Base32.decode(encoded) == Array(plain.utf8))
            let unpadded = encoded.replacingOccurrences(of: "=", with: "")
            #expect(Base32.encode(Array(plain.utf8), padding: false) == unpadded)
            #expect(Base32.decode(unpadded) == Array(plain.utf8))
            #expect(Base32.decode(unpadded.lowercased()) == Array(plain.utf8))
        }
    }

    @Test func lenientInput() {
        #expect(Base32.decode("mzxw 6ytb oi") == Array("foobar".utf8))
        #expect(Base32.decode("MZXW6YTBOI======") == Array("foobar".utf8))
        #expect(Base32.decode(" JBSW Y3DP EHPK 3PXP ") == Array("Hello!\u{DE}\u{AD}\u{BE}\u{EF}".unicodeScalars.map { UInt8($0.value) }))
    }

    @Test func invalidInputRefused() {
        #expect(Base32.decode("MZXW1") == nil)  // '1' is not in the alphabet
        #expect(Base32.decode("MZ=XW") == nil)  // padding in the middle
        #expect(Base32.decode("M") == nil)  // impossible lengths
        #expect(Base32.decode("MZX") == nil)
        #expect(Base32.decode("MZXW6Y") == nil)
        #expect(Base32.decode("MZXW6-YTB") == nil)
        #expect(Base32.decode("é") == nil)
    }

    @Test func randomRoundTrips() {
        for length in 0..<70 {
            let bytes = randomBytes(length)
            #expect(Base32.decode(Base32.encode(bytes)) == bytes)
            #expect(Base32.decode(Base32.encode(bytes, padding: false)) == bytes)
        }
    }
}

@Suite struct HOTPTests {
    /// RFC 4226 Appendix D: secret "12345678901234567890", counters 0–9.
    static let secret = Array("12345678901234567890".utf8)
    static let rfc4226 = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]

    @Test func rfc4226AppendixD() {
        for (counter, expected) in Self.rfc4226.enumerated() {
            #expect(HOTP.code(secret: Self.secret, counter: UInt64(counter)) == expected)
        }
    }

    @Test func verifyReturnsNextCounter() {
        #expect(HOTP.verify(code: "755224", secret: Self.secret, counter: 0) == 1)
        #expect(HOTP.verify(code: "287082", secret: Self.secret, counter: 1) == 2)
        // An old code (counter already passed) is refused.
        #expect(HOTP.verify(code: "755224", secret: Self.secret, counter: 1) == nil)
        // A wrong code is refused.
        #expect(HOTP.verify(code: "755225", secret: Self.secret, counter: 0) == nil)
        // Malformed codes are refused.
        #expect(HOTP.verify(code: "75522", secret: Self.secret, counter: 0) == nil)
        #expect(HOTP.verify(code: "7552244", secret: Self.secret, counter: 0) == nil)
        #expect(HOTP.verify(code: "75522a", secret: Self.secret, counter: 0) == nil)
        #expect(HOTP.verify(code: "", secret: Self.secret, counter: 0) == nil)
    }

    @Test func lookAhead() {
        // Counter 9's code, stored counter 2: within a look-ahead of 7, not of 6.
        #expect(HOTP.verify(code: "520489", secret: Self.secret, counter: 2, lookAhead: 7) == 10)
        #expect(HOTP.verify(code: "520489", secret: Self.secret, counter: 2, lookAhead: 6) == nil)
        #expect(HOTP.verify(code: "520489", secret: Self.secret, counter: 0) == 10)  // default look-ahead 10
        #expect(HOTP.verify(code: "755224", secret: Self.secret, counter: 0, lookAhead: 0) == 1)
        // Counters near the top do not overflow.
        let top = HOTP.code(secret: Self.secret, counter: UInt64.max - 1)
        #expect(HOTP.verify(code: top, secret: Self.secret, counter: UInt64.max - 3) == UInt64.max)
        let last = HOTP.code(secret: Self.secret, counter: UInt64.max)
        #expect(HOTP.verify(code: last, secret: Self.secret, counter: UInt64.max) == nil)
    }

    @Test func resynchronize() {
        let secret = randomBytes(20)
        let codes = (0..<1000).map { HOTP.code(secret: secret, counter: UInt64($0)) }
        // The device is 700 presses ahead of the stored counter 5.
        #expect(HOTP.verify(code: codes[705], secret: secret, counter: 5) == nil)
        #expect(HOTP.resynchronize(code1: codes[705], code2: codes[706], secret: secret, counter: 5) == 707)
        // Not consecutive, or in the wrong order: refused.
        #expect(HOTP.resynchronize(code1: codes[705], code2: codes[707], secret: secret, counter: 5) == nil)
        #expect(HOTP.resynchronize(code1: codes[706], code2: codes[705], secret: secret, counter: 5) == nil)
        // Outside the window: refused.
        #expect(HOTP.resynchronize(code1: codes[705], code2: codes[706], secret: secret, counter: 5, window: 600) == nil)
        // Before the stored counter: refused.
        #expect(HOTP.resynchronize(code1: codes[3], code2: codes[4], secret: secret, counter: 5) == nil)
        // Eight digits.
        let eight = (0..<3).map { HOTP.code(secret: secret, counter: UInt64(40 + $0), digits: 8, algorithm: .sha256) }
        #expect(HOTP.resynchronize(code1: eight[0], code2: eight[1], secret: secret, counter: 0, digits: 8, algorithm: .sha256) == 42)
    }

    @Test func matchesOathtool() throws {
        for _ in 0..<5 {
            let secret = randomBytes(20)
            let counter = UInt64.random(in: 0...1_000_000)
            let result = try run("oathtool", ["--hotp", "-c", String(counter), "-w", "2", hex(secret)])
            #expect(result.status == 0, "oathtool: \(result.output)")
            let expected = result.output.split(whereSeparator: \.isNewline).map(String.init)
            let ours = (0...2).map { HOTP.code(secret: secret, counter: counter + UInt64($0)) }
            #expect(expected == ours)
        }
    }

    @Test func matchesPyotp() throws {
        for algorithm in OTPAlgorithm.allCases {
            let secret = randomBytes(algorithm.recommendedSecretLength)
            let counter = UInt64.random(in: 0...UInt64(Int64.max))
            let ours = HOTP.code(secret: secret, counter: counter, digits: 7, algorithm: algorithm)
            let theirs = try Pyotp.run("""
                print(pyotp.HOTP("\(Base32.encode(secret))", digits=7, digest=hashlib.\(algorithm.rawValue.lowercased())).at(\(counter)))
                """)
            #expect(ours == theirs)
        }
    }
}

@Suite struct TOTPTests {
    /// RFC 6238 Appendix B: (time, SHA1, SHA256, SHA512), 8 digits.
    static let rfc6238: [(Int, String, String, String)] = [
        (59, "94287082", "46119246", "90693936"),
        (1_111_111_109, "07081804", "68084774", "25091201"),
        (1_111_111_111, "14050471", "67062674", "99943326"),
        (1_234_567_890, "89005924", "91819424", "93441116"),
        (2_000_000_000, "69279037", "90698825", "38618901"),
        (20_000_000_000, "65353130", "77737706", "47863826"),
    ]

    @Test(arguments: OTPAlgorithm.allCases)
    func rfc6238AppendixB(algorithm: OTPAlgorithm) {
        let seed = rfc6238Seed(algorithm)
        for (time, sha1, sha256, sha512) in Self.rfc6238 {
            let expected = switch algorithm {
            case .sha1: sha1
            case .sha256: sha256
            case .sha512: sha512
            }
            let date = Date(timeIntervalSince1970: TimeInterval(time))
            #expect(TOTP.code(secret: seed, time: date, digits: 8, algorithm: algorithm) == expected)
            #expect(TOTP.verify(code: expected, secret: seed, time: date, lastUsedStep: nil, digits: 8, algorithm: algorithm) == UInt64(time / 30))
        }
    }

    @Test func stepBoundaries() {
        #expect(TOTP.step(at: Date(timeIntervalSince1970: 0)) == 0)
        #expect(TOTP.step(at: Date(timeIntervalSince1970: 29.9)) == 0)
        #expect(TOTP.step(at: Date(timeIntervalSince1970: 30)) == 1)
        #expect(TOTP.step(at: Date(timeIntervalSince1970: -100)) == 0)
        #expect(TOTP.step(at: Date(timeIntervalSince1970: 90), period: 60) == 1)
    }

    @Test func driftOfOneStepAcceptedTwoRefused() {
        let secret = TOTP.generateSecret()
        let now = Date(timeIntervalSince1970: 1_700_000_015)
        let step = TOTP.step(at: now)
        func code(_ offset: Int) -> String {
            HOTP.code(secret: secret, counter: UInt64(Int(step) + offset))
        }
        #expect(TOTP.verify(code: code(0), secret: secret, time: now, lastUsedStep: nil) == step)
        #expect(TOTP.verify(code: code(-1), secret: secret, time: now, lastUsedStep: nil) == step - 1)
        #expect(TOTP.verify(code: code(1), secret: secret, time: now, lastUsedStep: nil) == step + 1)
        #expect(TOTP.verify(code: code(-2), secret: secret, time: now, lastUsedStep: nil) == nil)
        #expect(TOTP.verify(code: code(2), secret: secret, time: now, lastUsedStep: nil) == nil)
        // A wider drift accepts ±2; no drift accepts only the current step.
        #expect(TOTP.verify(code: code(-2), secret: secret, time: now, lastUsedStep: nil, drift: 2) == step - 2)
        #expect(TOTP.verify(code: code(1), secret: secret, time: now, lastUsedStep: nil, drift: 0) == nil)
        // Wrong and malformed codes.
        let wrong = String(format: "%06d", (Int(code(0))! + 1) % 1_000_000)
        #expect(TOTP.verify(code: wrong, secret: secret, time: now, lastUsedStep: nil) == nil)
        #expect(TOTP.check(code: wrong, secret: secret, time: now, lastUsedStep: nil) == .invalid)
        #expect(TOTP.verify(code: " " + code(0), secret: secret, time: now, lastUsedStep: nil) == nil)
        #expect(TOTP.verify(code: code(0), secret: TOTP.generateSecret(), time: now, lastUsedStep: nil) == nil)
        #expect(TOTP.verify(code: code(0), secret: secret, time: now, lastUsedStep: nil, digits: 8) == nil)
    }

    @Test func replayRefused() {
        let secret = TOTP.generateSecret()
        let now = Date(timeIntervalSince1970: 1_700_000_015)
        let step = TOTP.step(at: now)
        let current = TOTP.code(secret: secret, time: now)
        let previous = HOTP.code(secret: secret, counter: step - 1)
        let next = HOTP.code(secret: secret, counter: step + 1)

        // Same step twice.
        let used = TOTP.verify(code: current, secret: secret, time: now, lastUsedStep: nil)
        #expect(used == step)
        #expect(TOTP.verify(code: current, secret: secret, time: now, lastUsedStep: used) == nil)
        #expect(TOTP.check(code: current, secret: secret, time: now, lastUsedStep: used) == .replayed(step: step))
        // Same code ten seconds later, same step: still refused.
        #expect(TOTP.verify(code: current, secret: secret, time: now.addingTimeInterval(10), lastUsedStep: used) == nil)
        // An older code still inside the drift window, after a newer one: refused.
        #expect(TOTP.verify(code: previous, secret: secret, time: now, lastUsedStep: used) == nil)
        #expect(TOTP.check(code: previous, secret: secret, time: now, lastUsedStep: used) == .replayed(step: step - 1))
        // The next step is still accepted, and then the current one is refused.
        #expect(TOTP.verify(code: next, secret: secret, time: now, lastUsedStep: used) == step + 1)
        #expect(TOTP.verify(code: current, secret: secret, time: now.addingTimeInterval(30), lastUsedStep: step + 1) == nil)
    }

    @Test func otpauthURIParsesBack() throws {
        let secret = TOTP.generateSecret(bytes: 32)
        let uri = TOTP.otpauthURI(
            secret: secret, issuer: "Sigillo Qualified CA", account: "maria.rossi+1@example.com",
            digits: 8, algorithm: .sha256, period: 30
        )
        #expect(uri.hasPrefix("otpauth://totp/Sigillo%20Qualified%20CA:maria.rossi%2B1%40example.com?secret="))
        let components = try #require(URLComponents(string: uri))
        #expect(components.scheme == "otpauth")
        #expect(components.host == "totp")
        #expect(components.path == "/Sigillo Qualified CA:maria.rossi+1@example.com")
        let query = Dictionary(uniqueKeysWithValues: (components.queryItems ?? []).map { ($0.name, $0.value ?? "") })
        #expect(query["secret"].flatMap(Base32.decode) == secret)
        #expect(query["secret"]?.contains("=") == false)
        #expect(query["issuer"] == "Sigillo Qualified CA")
        #expect(query["algorithm"] == "SHA256")
        #expect(query["digits"] == "8")
        #expect(query["period"] == "30")

        let minimal = TOTP.otpauthURI(secret: Array("12345678901234567890".utf8), issuer: "Sigillo", account: "alice")
        #expect(minimal == "otpauth://totp/Sigillo:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Sigillo&algorithm=SHA1&digits=6&period=30")
        // A colon inside the issuer or account cannot break the label.
        #expect(TOTP.otpauthURI(secret: secret, issuer: "A:B", account: "c d").contains("/A%3AB:c%20d?"))

        // pyotp reads the same parameters back and computes the same code.
        let time = 1_700_000_000
        let theirs = try Pyotp.run("""
            t = pyotp.parse_uri("\(uri)")
            print(t.issuer, t.name, t.digits, t.interval, t.digest().name, t.at(\(time)), sep="|")
            """)
        let ours = TOTP.code(secret: secret, time: Date(timeIntervalSince1970: TimeInterval(time)), digits: 8, algorithm: .sha256)
        #expect(theirs == "Sigillo Qualified CA|maria.rossi+1@example.com|8|30|sha256|\(ours)")
    }

    @Test func generatedSecretsAreRandom() {
        let a = TOTP.generateSecret()
        let b = TOTP.generateSecret()
        #expect(a.count == 20)
        #expect(TOTP.generateSecret(bytes: 64).count == 64)
        #expect(a != b)
    }

    @Test func matchesOathtool() throws {
        for algorithm in OTPAlgorithm.allCases {
            for _ in 0..<3 {
                let secret = randomBytes(algorithm.recommendedSecretLength)
                let time = Int.random(in: 0...4_000_000_000)
                let name = algorithm.rawValue.lowercased()
                let result = try run("oathtool", ["--totp=\(name)", "-d", "8", "-N", "@\(time)", "--base32", Base32.encode(secret)])
                #expect(result.status == 0, "oathtool: \(result.output)")
                let ours = TOTP.code(secret: secret, time: Date(timeIntervalSince1970: TimeInterval(time)), digits: 8, algorithm: algorithm)
                #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines) == ours)
                #expect(TOTP.verify(code: ours, secret: secret, time: Date(timeIntervalSince1970: TimeInterval(time + 30)),
                                    lastUsedStep: nil, digits: 8, algorithm: algorithm) == UInt64(time / 30))
            }
        }
    }

    @Test func matchesPyotp() throws {
        var lines: [String] = []
        var ours: [String] = []
        for algorithm in OTPAlgorithm.allCases {
            for digits in [6, 8] {
                let secret = randomBytes(Int.random(in: 16...64))
                let time = Int.random(in: 0...4_000_000_000)
                lines.append("print(pyotp.TOTP(\"\(Base32.encode(secret, padding: false))\", digits=\(digits), digest=hashlib.\(algorithm.rawValue.lowercased())).at(\(time)))")
                ours.append(TOTP.code(secret: secret, time: Date(timeIntervalSince1970: TimeInterval(time)), digits: digits, algorithm: algorithm))
            }
        }
        let theirs = try Pyotp.run(lines.joined(separator: "\n"))
        #expect(theirs.split(separator: "\n").map(String.init) == ours)
    }
}

@Suite struct SMSCodeTests {
    @Test func digitsAreUniformAndRandom() {
        var counts = [Int](repeating: 0, count: 10)
        var codes = Set<String>()
        for _ in 0..<2000 {
            let code = SMSCode.generate()
            #expect(code.count == 6)
            #expect(code.allSatisfy { $0.isASCII && $0.isNumber })
            for digit in code { counts[Int(String(digit))!] += 1 }
            codes.insert(code)
        }
        // 12000 digits: each digit appears ~1200 times; a biased or constant generator fails this.
        #expect(counts.allSatisfy { (900...1500).contains($0) }, "\(counts)")
        #expect(codes.count > 1900)
        #expect(SMSCode.generate(digits: 8).count == 8)
    }

    @Test func verify() {
        #expect(SMSCode.verify(code: "123456", expected: "123456"))
        #expect(!SMSCode.verify(code: "123457", expected: "123456"))
        #expect(!SMSCode.verify(code: "12345", expected: "123456"))
        #expect(!SMSCode.verify(code: "", expected: ""))
    }
}

/// Runs Python snippets against pyotp in `<root>/.venv` (created by `make`, or
/// `python3 -m venv .venv && .venv/bin/pip install pyotp`).
enum Pyotp {
    static func run(_ script: String) throws -> String {
        let python = repositoryRoot.appendingPathComponent(".venv/bin/python").path
        try #require(FileManager.default.isExecutableFile(atPath: python), "missing \(python): run `make` (or create .venv with pyotp)")
        let result = try SigilloTestSupport.run(python, ["-c", "import hashlib, pyotp\n" + script])
        try #require(result.status == 0, "python: \(result.output)")
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
