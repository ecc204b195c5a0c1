import Foundation
import SigilloDomain
import SigilloPKI
import SigilloSQLite
import SigilloTestSupport
import SwiftASN1
import Testing
import X509

@Suite("CRL publisher: caching, freshness, numbers")
struct CRLPublisherTests {
    /// What a relying party reads in a published CRL: openssl checks its signature against the CA certificate and
    /// reads its CRL number (`crlNumber=0x1C`), which must be the number the publisher reports.
    static func openedNumber(_ crl: CRLPublisher.Published, _ fixture: ServiceFixture) throws -> Int64 {
        let name = UUID().uuidString.prefix(8)
        let crlPath = fixture.token.directory.appendingPathComponent("crl-\(name).der").path
        let caPath = fixture.token.directory.appendingPathComponent("ca.pem").path
        try Data(crl.der).write(to: URL(fileURLWithPath: crlPath))
        try fixture.ca.certificatePEM.write(toFile: caPath, atomically: true, encoding: .utf8)
        let result = try run("openssl", ["crl", "-inform", "DER", "-in", crlPath, "-CAfile", caPath, "-noout", "-verify", "-crlnumber"])
        #expect(result.status == 0 && result.output.contains("verify OK"), "\(result.output)")
        let line = try #require(result.output.split(separator: "\n").first { $0.hasPrefix("crlNumber=") }, "\(result.output)")
        let hex = line.dropFirst("crlNumber=".count).trimmingCharacters(in: .whitespaces)
        return try #require(Int64(hex.hasPrefix("0x") ? String(hex.dropFirst(2)) : hex, radix: 16), "\(line)")
    }

    @Test("served from cache while nothing changes; rebuilt after a status change and when half its validity has passed")
    func freshness() async throws {
        let fixture = try await ServiceFixture()
        let admin = fixture.service.lifecycle
        let first = try await fixture.crl.current()
        #expect(try first.number == 1 && Self.openedNumber(first, fixture) == 1)
        // Valid a day from when it was built; dated a minute earlier for relying parties whose clocks are behind.
        #expect(first.nextUpdate.timeIntervalSince(first.thisUpdate) == 86_400 + CertificateAuthority.clockSkewAllowance)
        #expect(first.thisUpdate == Date(timeIntervalSince1970: fixture.clock.now.timeIntervalSince1970.rounded(.down)).addingTimeInterval(-60))
        fixture.clock.advance(3_600)
        let cached = try await fixture.crl.current()
        #expect(cached.number == first.number && cached.der == first.der)

        let active = try await fixture.activeHolder()
        // An activation adds no CRL entry: still the same CRL.
        #expect(try await fixture.crl.current().number == first.number)
        _ = try await admin.suspend(credentialID: active.credential.id, actor: "operator:test")
        let suspended = try await fixture.crl.current()
        #expect(try suspended.number == 2 && Self.openedNumber(suspended, fixture) == 2)
        let stored = try #require(try await fixture.store.credential(id: active.credential.id))
        #expect(stored.suspendedAt == Date(timeIntervalSince1970: fixture.clock.now.timeIntervalSince1970.rounded(.down)))

        fixture.clock.advance(12 * 3_600 - 1)
        #expect(try await fixture.crl.current().number == 2)
        fixture.clock.advance(2)
        let refreshed = try await fixture.crl.current()
        #expect(try refreshed.number == 3 && Self.openedNumber(refreshed, fixture) == 3)
        #expect(refreshed.thisUpdate > suspended.thisUpdate)

        _ = try await admin.reinstate(credentialID: active.credential.id, actor: "operator:test")
        let reinstated = try await fixture.crl.current()
        #expect(try reinstated.number == 4 && Self.openedNumber(reinstated, fixture) == 4)
        #expect(try await fixture.store.credential(id: active.credential.id)?.suspendedAt == nil)
    }

    @Test("OCSP: malformed bytes give a malformedRequest response")
    func ocspEdges() async throws {
        let fixture = try await ServiceFixture()
        let responder = try OCSPResponder(ca: fixture.ca, store: fixture.store, clock: fixture.clock.serviceClock)
        #expect(await responder.respond(to: [0x01, 0x02]) == OCSPResponder.errorResponse(.malformedRequest))
        #expect(await responder.respond(to: []) == [0x30, 0x03, 0x0A, 0x01, 0x01])
    }
}
