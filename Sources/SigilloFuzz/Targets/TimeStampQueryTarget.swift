import Foundation
import SigilloPKI
import SigilloTestSupport
import SwiftASN1
import X509

/// RFC 3161 time-stamp queries through the TSA's public entry point, `TimeStampAuthority.respond(to:)` (the body of
/// `POST /tsa`), with a TSA key and certificate in a fresh SoftHSM token (`ServiceFixture`'s CA issues it).
///
/// Checked: every answer is a DER `TimeStampResp` whose status is granted (0) or rejection (2); a granted one carries a
/// token, a rejection none and a failure reason other than `systemFailure` (the TSA form of a 500: the signing budget
/// is set so large that "busy" cannot happen here).
enum TimeStampQueryTarget {
    static let target = FuzzTarget(name: "timestamp-query", summary: "RFC 3161 time-stamp queries (DER) answered by the TSA", libFuzzerFlags: ["-detect_leaks=0"]) {
        let tsa = try runBlocking { try await Self.prepare() }
        return { bytes in
            let reply = (try? runBlocking { await tsa.respond(to: bytes) })
            guard let reply, let (status, hasToken) = Self.statusAndToken(reply.der) else {
                FuzzCheck.fail("the answer is not a DER TimeStampResp")
            }
            FuzzCheck.require(status == 0 || status == 2, "status \(status)")
            FuzzCheck.require(reply.granted == (status == 0) && hasToken == reply.granted, "granted \(reply.granted), status \(status), token \(hasToken)")
            FuzzCheck.require(reply.granted || reply.failureInfo != .systemFailure, "a query made the TSA answer systemFailure")
        }
    }

    static func prepare() async throws -> TimeStampAuthority {
        atexit { try? FileManager.default.removeItem(at: TestHSM.root) }
        let fixture = try await ServiceFixture()
        Self.keepAlive = fixture
        let name = try DistinguishedName { CountryName("IT"); OrganizationName("Sigillo Fuzz"); CommonName("Sigillo Fuzz TSA") }
        // The corpus asks for the default policy (ETSI EN 319 421 BTSP) or none.
        let settings = try TimeStampAuthority.Settings(policyOID: "0.4.0.2023.1.1", signingBurst: 1 << 30, signingRate: 1e9)
        return try await TimeStampAuthority.create(
            token: fixture.token.token, keyID: "fuzz-tsa", ca: fixture.ca, name: name, pkiBaseURL: "http://127.0.0.1:8080",
            now: Date().addingTimeInterval(-60), settings: settings)
    }

    /// The fixture owns the token and its folder: kept for the life of the process.
    nonisolated(unsafe) static var keepAlive: ServiceFixture?

    /// `TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken TimeStampToken OPTIONAL }`: the status and
    /// whether a token follows; nil when the bytes are not that.
    static func statusAndToken(_ reply: [UInt8]) -> (Int, Bool)? {
        guard let root = try? DER.parse(reply), root.identifier == .sequence, case .constructed(let fields) = root.content else { return nil }
        var iterator = fields.makeIterator()
        guard let info = iterator.next(), info.identifier == .sequence, case .constructed(let infoFields) = info.content else { return nil }
        var infoIterator = infoFields.makeIterator()
        guard let status = infoIterator.next(), let value = try? Int(derEncoded: status) else { return nil }
        let token = iterator.next()
        guard iterator.next() == nil else { return nil }
        return (value, token?.identifier == .sequence)
    }
}
