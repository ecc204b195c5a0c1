import ArgumentParser
import Foundation
import PKCS11
import SigilloPKI
import SigilloServer
import X509

struct CA: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "The signing certificate authority whose key is in the token.",
        subcommands: [Init.self]
    )

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate the CA key pair in the token and write its self-signed certificate, then the time-stamping authority's key and certificate (idempotent).")

        @Option(help: "JSON configuration file (as for serve).")
        var config: String?

        @Option(help: "CA key algorithm: ecdsa-p384, ecdsa-p256, rsa-3072, rsa-4096.")
        var algorithm: String = "ecdsa-p384"

        @Option(help: "Organization in the CA's name.")
        var organization: String = "Sigillo Development"

        func run() async throws {
            let configuration = try ServerConfiguration.load(path: self.config)
            guard let algorithm = KeyAlgorithm(rawValue: self.algorithm) else { throw ValidationError("unknown algorithm \(self.algorithm)") }
            var tokenConfiguration = try configuration.tokenConfiguration()
            tokenConfiguration.sessions = 1
            let token = try Token.open(tokenConfiguration)
            defer { token.close() }
            let ca = try await self.certificateAuthority(configuration: configuration, token: token, algorithm: algorithm)
            try await self.timeStampAuthority(configuration: configuration, token: token, ca: ca)
        }

        /// The CA, made now when neither its key nor its certificate exist.
        func certificateAuthority(configuration: ServerConfiguration, token: Token, algorithm: KeyAlgorithm) async throws -> CertificateAuthority {
            let hasKey = try await token.containsKey(id: configuration.caKeyID)
            let hasFile = FileManager.default.fileExists(atPath: configuration.caCertificate)
            switch (hasKey, hasFile) {
            case (true, true):
                let pem = try String(contentsOfFile: configuration.caCertificate, encoding: .utf8)
                let ca = try CertificateAuthority(token: token, keyID: configuration.caKeyID, certificatePEM: pem)
                try await ca.checkKeyInToken()
                print("CA already set up: \(configuration.caCertificate) matches key '\(configuration.caKeyID)' in the token")
                return ca
            case (false, false):
                let organization = self.organization
                let name = try DistinguishedName {
                    CountryName("IT")
                    OrganizationName(organization)
                    CommonName("\(organization) Qualified Signature CA")
                }
                let ca = try await CertificateAuthority.create(token: token, keyID: configuration.caKeyID, algorithm: algorithm, name: name, now: Date())
                try FileManager.default.createDirectory(at: URL(fileURLWithPath: configuration.caCertificate).deletingLastPathComponent(), withIntermediateDirectories: true)
                try ca.certificatePEM.write(toFile: configuration.caCertificate, atomically: true, encoding: .utf8)
                print("CA key '\(configuration.caKeyID)' generated in the token; certificate written to \(configuration.caCertificate)")
                return ca
            case (true, false):
                throw ValidationError("key '\(configuration.caKeyID)' is in the token but \(configuration.caCertificate) is missing: restore the certificate")
            case (false, true):
                throw ValidationError("\(configuration.caCertificate) exists but its key '\(configuration.caKeyID)' is not in the token")
            }
        }

        /// The time-stamping authority: a key in the token and a certificate the CA issues (EKU timeStamping), made now
        /// when neither exists (an installation from before the TSA gets one).
        func timeStampAuthority(configuration: ServerConfiguration, token: Token, ca: CertificateAuthority) async throws {
            let hasKey = try await token.containsKey(id: configuration.tsaKeyID)
            let hasFile = FileManager.default.fileExists(atPath: configuration.tsaCertificate)
            switch (hasKey, hasFile) {
            case (true, true):
                let pem = try String(contentsOfFile: configuration.tsaCertificate, encoding: .utf8)
                let tsa = try TimeStampAuthority(token: token, keyID: configuration.tsaKeyID, certificate: try Certificate(pemEncoded: pem),
                                                 chain: [ca.certificateDER], settings: try configuration.timeStampSettings())
                try await tsa.checkKeyInToken()
                print("TSA already set up: \(configuration.tsaCertificate) matches key '\(configuration.tsaKeyID)' in the token")
            case (false, false):
                let organization = self.organization
                let name = try DistinguishedName {
                    CountryName("IT")
                    OrganizationName(organization)
                    CommonName("\(organization) Time-Stamping Authority")
                }
                let tsa = try await TimeStampAuthority.create(
                    token: token, keyID: configuration.tsaKeyID, ca: ca, name: name, pkiBaseURL: configuration.pkiBaseURL, now: Date(),
                    settings: try configuration.timeStampSettings())
                try FileManager.default.createDirectory(at: URL(fileURLWithPath: configuration.tsaCertificate).deletingLastPathComponent(), withIntermediateDirectories: true)
                try tsa.certificatePEM.write(toFile: configuration.tsaCertificate, atomically: true, encoding: .utf8)
                print("TSA key '\(configuration.tsaKeyID)' generated in the token; certificate (issued by the CA) written to \(configuration.tsaCertificate)")
            case (true, false):
                throw ValidationError("key '\(configuration.tsaKeyID)' is in the token but \(configuration.tsaCertificate) is missing: restore the certificate")
            case (false, true):
                throw ValidationError("\(configuration.tsaCertificate) exists but its key '\(configuration.tsaKeyID)' is not in the token")
            }
        }
    }
}
