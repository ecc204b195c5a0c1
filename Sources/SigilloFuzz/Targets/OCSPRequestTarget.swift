import Crypto
import Foundation
import SigilloDomain
import SigilloPKI
import SigilloTestSupport
import SwiftASN1
import X509

/// OCSP requests (RFC 6960) through the responder's public entry point, `OCSPResponder.respond(to:)`, against a CA
/// and store of a fresh SoftHSM token (`ServiceFixture`), with one active and one suspended holder certificate.
///
/// So that mutated requests reach more than "unknown issuer", the corpus uses placeholders the target replaces by
/// this run's values before the request is answered: issuer name hash `A1…A1` and key hash `A2…A2` (20, 32, 48 or 64
/// bytes: SHA-1, SHA-256, SHA-384, SHA-512), serial number `C1…C1` (16 bytes: the active certificate) and `C2…C2`
/// (the suspended one). Checked: every answer is a DER `OCSPResponse` whose status is not `internalError` (a request
/// that breaks the responder is the OCSP form of a 500).
enum OCSPRequestTarget {
    // The answer is signed on the token's worker threads, which free some of their memory after the input is done:
    // libFuzzer would run a full leak check after nearly every input (LeakSanitizer still checks once at exit).
    static let target = FuzzTarget(name: "ocsp-request", summary: "OCSP requests (DER) answered by the responder", libFuzzerFlags: ["-detect_leaks=0"]) {
        let (responder, placeholders) = try runBlocking { try await Self.prepare() }
        return { bytes in
            let request = Self.substitute(placeholders, in: bytes)
            let response = (try? runBlocking { await responder.respond(to: request) }) ?? []
            guard let status = Self.responseStatus(response) else {
                FuzzCheck.fail("the answer is not a DER OCSPResponse: \(response.prefix(16).map { String($0, radix: 16) })")
            }
            FuzzCheck.require(status != OCSPResponder.ResponseStatus.internalError.rawValue, "the responder answered internalError")
        }
    }

    /// Placeholder byte strings and what replaces them.
    typealias Placeholders = [(placeholder: [UInt8], value: [UInt8])]

    static func prepare() async throws -> (OCSPResponder, Placeholders) {
        atexit { try? FileManager.default.removeItem(at: TestHSM.root) }
        let fixture = try await ServiceFixture()
        let good = try await fixture.activeHolder(name: "Mario")
        let held = try await fixture.activeHolder(name: "Lucia")
        _ = try await fixture.service.lifecycle.suspend(credentialID: held.credential.id, actor: "operator:fuzz")
        let responder = try OCSPResponder(ca: fixture.ca, store: fixture.store, clock: fixture.clock.serviceClock)
        Self.keepAlive = fixture

        var serializer = DER.Serializer()
        try serializer.serialize(fixture.ca.certificate.subject)
        let name = serializer.serializedBytes
        let key = Array(fixture.ca.certificate.publicKey.subjectPublicKeyInfoBytes)
        var placeholders: Placeholders = []
        // Longest first: a 64-byte placeholder contains the shorter ones.
        for hash in [Self.sha512, Self.sha384, Self.sha256, Self.sha1] {
            let length = hash([]).count
            placeholders.append(([UInt8](repeating: 0xA1, count: length), hash(name)))
            placeholders.append(([UInt8](repeating: 0xA2, count: length), hash(key)))
        }
        placeholders.append(([UInt8](repeating: 0xC1, count: 16), Hex.bytes(good.credential.serialNumber)!))
        placeholders.append(([UInt8](repeating: 0xC2, count: 16), Hex.bytes(held.credential.serialNumber)!))
        return (responder, placeholders)
    }

    /// The fixture owns the token and its folder: kept for the life of the process.
    nonisolated(unsafe) static var keepAlive: ServiceFixture?

    static func sha1(_ bytes: [UInt8]) -> [UInt8] { Array(Insecure.SHA1.hash(data: bytes)) }
    static func sha256(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }
    static func sha384(_ bytes: [UInt8]) -> [UInt8] { Array(SHA384.hash(data: bytes)) }
    static func sha512(_ bytes: [UInt8]) -> [UInt8] { Array(SHA512.hash(data: bytes)) }

    /// `bytes` with every placeholder replaced by its value (same length, so DER lengths stay right).
    static func substitute(_ placeholders: Placeholders, in bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        for (placeholder, value) in placeholders where value.count == placeholder.count {
            var index = 0
            while index + placeholder.count <= bytes.count {
                if bytes[index] == placeholder[0], bytes[index..<index + placeholder.count].elementsEqual(placeholder) {
                    bytes.replaceSubrange(index..<index + placeholder.count, with: value)
                    index += placeholder.count
                } else {
                    index += 1
                }
            }
        }
        return bytes
    }

    /// The `responseStatus` of a DER `OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] … }`.
    static func responseStatus(_ response: [UInt8]) -> Int? {
        guard let root = try? DER.parse(response), root.identifier == .sequence, case .constructed(let fields) = root.content else { return nil }
        var iterator = fields.makeIterator()
        guard let status = iterator.next(), status.identifier == .enumerated, case .primitive(let value) = status.content, value.count == 1 else { return nil }
        return Int(value[value.startIndex])
    }
}
