import Foundation
import Logging
import PKCS11
import SigilloDomain
import SigilloPKI
import SigilloServer
import SigilloTestSupport
import Testing
import X509

@Suite("Start-up: the seed key and the database belong together")
struct SeedKeyStartTests {
    @Test("a database sealed with one token's seed key refuses another token at start-up, and no key is made in it")
    func wrongToken() async throws {
        let first = try TestToken()
        var configuration = ServerConfiguration()
        configuration.database = first.directory.appendingPathComponent("sigillo.sqlite").path
        configuration.caCertificate = first.directory.appendingPathComponent("ca.pem").path
        configuration.tsaCertificate = first.directory.appendingPathComponent("tsa.pem").path
        configuration.outboxFile = nil
        configuration.mailFile = first.directory.appendingPathComponent("mail.jsonl").path
        let name = try DistinguishedName { CountryName("IT"); OrganizationName("Sigillo Test"); CommonName("Sigillo Test CA") }
        let ca = try await CertificateAuthority.create(token: first.token, keyID: configuration.caKeyID, name: name, now: Date().addingTimeInterval(-60))
        try ca.certificatePEM.write(toFile: configuration.caCertificate, atomically: true, encoding: .utf8)
        let logger = Logger(label: "seed-key-test")
        // First start: the seed key is made in the first token.
        _ = try await SigilloServices.open(configuration: configuration, token: first.token, logger: logger)
        #expect(try await first.token.hmacSHA256(keyID: SeedVault.defaultKeyID, data: [1]).count == 32)

        let second = try TestToken()
        let error = await #expect(throws: ConfigurationError.self) {
            _ = try await SigilloServices.open(configuration: configuration, token: second.token, logger: logger)
        }
        #expect(error?.description.contains("seed key") == true, "\(String(describing: error))")
        await #expect(throws: PKCS11Error.self) { _ = try await second.token.hmacSHA256(keyID: SeedVault.defaultKeyID, data: [1]) }
        // The right token still opens it.
        _ = try await SigilloServices.open(configuration: configuration, token: first.token, logger: logger)
    }
}
