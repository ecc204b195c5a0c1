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
        subcommands: [Init.self, CSR.self, Import.self, TrustedList.self]
    )

    /// The CA's name: C, O, organizationIdentifier (EN 319 412-1 legal person semantics, e.g. `VATIT-12345678901`)
    /// when given, CN.
    static func name(organization: String, organizationIdentifier: String?, commonName: String) throws -> DistinguishedName {
        var rdns = [
            RelativeDistinguishedName(try .init(type: .RDNAttributeType.countryName, printableString: "IT")),
            RelativeDistinguishedName(.init(type: .RDNAttributeType.organizationName, utf8String: organization)),
        ]
        if let organizationIdentifier {
            guard organizationIdentifier.range(of: #"^[A-Z]{3}[A-Z]{2}-[A-Za-z0-9]+$"#, options: .regularExpression) != nil else {
                throw ValidationError("the organization identifier must be like VATIT-12345678901 (EN 319 412-1 §5.1.4), got '\(organizationIdentifier)'")
            }
            rdns.append(RelativeDistinguishedName(.init(type: [2, 5, 4, 97], utf8String: organizationIdentifier)))
        }
        rdns.append(RelativeDistinguishedName(.init(type: .RDNAttributeType.commonName, utf8String: commonName)))
        return DistinguishedName(rdns)
    }

    /// Opens the configured token with one session.
    static func openToken(_ configuration: ServerConfiguration) throws -> Token {
        var tokenConfiguration = try configuration.tokenConfiguration()
        tokenConfiguration.sessions = 1
        return try Token.open(tokenConfiguration)
    }

    /// Generate the issuing CA's key pair in the token (unless it is there already) and write a PKCS#10 request the
    /// token signs, for the provider's offline root.
    struct CSR: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "csr",
            abstract: "Generate the issuing CA's key in the token and write a PKCS#10 request for the provider's root (then `ca import`).")

        @OptionGroup var identity: CAIdentityOptions

        @Option(help: "Common name (default: <organization> Qualified Signature CA).")
        var commonName: String?

        @Option(help: "Where to write the request (PEM).")
        var out: String = "certs/ca.csr"

        func run() async throws {
            let configuration = try ServerConfiguration.load(path: self.identity.config)
            let algorithm = try self.identity.keyAlgorithm()
            let name = try self.identity.name(commonName: self.commonName)
            guard !FileManager.default.fileExists(atPath: configuration.caCertificate) else {
                throw ValidationError("\(configuration.caCertificate) exists: the CA is installed already (move it away to certify a new key)")
            }
            let token = try CA.openToken(configuration)
            defer { token.close() }
            if try await token.containsKey(id: configuration.caKeyID) {
                print("CA key '\(configuration.caKeyID)' is in the token already: the request is for it")
            } else {
                _ = try await token.generateKeyPair(id: configuration.caKeyID, algorithm: algorithm, label: configuration.caKeyID)
                print("CA key '\(configuration.caKeyID)' generated in the token")
            }
            let request = try await CertificateAuthority.signingRequest(token: token, keyID: configuration.caKeyID, name: name)
            try FileManager.default.createDirectory(at: URL(fileURLWithPath: self.out).deletingLastPathComponent(), withIntermediateDirectories: true)
            try request.serializeAsPEM().pemString.write(toFile: self.out, atomically: true, encoding: .utf8)
            print("certificate signing request for \(name) written to \(self.out): have the root sign it, then `sigillo ca import`")
        }
    }

    /// Install the issuing CA's certificate from the root, with the chain up to the root.
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Install the issuing CA certificate the root signed, after checking it matches the token key and chains to the root; then set up the TSA.")

        @Option(help: "JSON configuration file (as for serve).")
        var config: String?

        @Argument(help: "The issuing CA certificate (PEM).")
        var certificate: String

        @Option(help: "The certificates above it (PEM): intermediates, then the self-signed root.")
        var chain: String?

        func run() async throws {
            let configuration = try ServerConfiguration.load(path: self.config)
            guard let certificatePEM = try? String(contentsOfFile: self.certificate, encoding: .utf8) else {
                throw ValidationError("\(self.certificate) cannot be read")
            }
            let certificates = try CertificateAuthority.certificates(pem: certificatePEM, what: self.certificate)
            guard certificates.count == 1 else { throw ValidationError("\(self.certificate) must hold the CA certificate alone (the rest goes in --chain)") }
            var chain: [Certificate] = []
            if let path = self.chain {
                guard let pem = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("\(path) cannot be read") }
                chain = try CertificateAuthority.certificates(pem: pem, what: path)
            }
            let token = try CA.openToken(configuration)
            defer { token.close() }
            let ca = try await CertificateAuthority.importing(
                token: token, keyID: configuration.caKeyID, certificate: certificates[0], chain: chain, now: Date(), profile: try configuration.holderProfile())
            try FileManager.default.createDirectory(at: URL(fileURLWithPath: configuration.caCertificate).deletingLastPathComponent(), withIntermediateDirectories: true)
            try ca.certificatePEM.write(toFile: configuration.caCertificate, atomically: true, encoding: .utf8)
            if chain.isEmpty {
                try? FileManager.default.removeItem(atPath: configuration.caChain)
            } else {
                let pem = try chain.map { try $0.serializeAsPEM().pemString + "\n" }.joined()
                try pem.write(toFile: configuration.caChain, atomically: true, encoding: .utf8)
            }
            print("CA certificate \(ca.certificate.subject) installed in \(configuration.caCertificate)"
                + (chain.isEmpty ? "" : "; chain up to \(chain.last!.subject) in \(configuration.caChain)"))
            let organization = ca.certificate.subject.first { $0.first?.type == .RDNAttributeType.organizationName }?.first.map { "\($0.value)" } ?? "Sigillo"
            try await Init.timeStampAuthority(configuration: configuration, token: token, ca: ca, organization: organization)
        }
    }

    /// Write the ETSI TS 119 612 TSPService entry of the CA for the supervisory body's trusted list.
    struct TrustedList: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "trusted-list",
            abstract: "Write the CA's ETSI TS 119 612 trusted-list entry (service CA/QC, status granted, qualifiers for e-signatures and a QSCD managed on the holder's behalf).")

        @Option(help: "JSON configuration file (as for serve).")
        var config: String?

        @Option(help: "Where to write the XML (default: standard output).")
        var out: String?

        @Option(help: "When the granted status begins, ISO 8601 (default: the CA certificate's notBefore).")
        var statusStart: String?

        func run() async throws {
            let configuration = try ServerConfiguration.load(path: self.config)
            guard let pem = try? String(contentsOfFile: configuration.caCertificate, encoding: .utf8) else {
                throw ValidationError("\(configuration.caCertificate) cannot be read: run `sigillo ca init` or `sigillo ca import` first")
            }
            let certificate = try Certificate(pemEncoded: pem)
            let profile = try configuration.holderProfile()
            var start = certificate.notValidBefore
            if let text = self.statusStart {
                guard let date = ISO8601DateFormatter().date(from: text) else { throw ValidationError("--status-start must be ISO 8601, e.g. 2026-12-01T00:00:00Z") }
                start = date
            }
            let commonName = certificate.subject.first { $0.first?.type == .RDNAttributeType.commonName }?.first.map { "\($0.value)" } ?? "\(certificate.subject)"
            let names = configuration.qualifiedProfile.serviceName ?? ["en": commonName, "it": commonName]
            let entry = try TrustedListEntry(certificate: certificate, names: names, policyOID: profile.policyOID, qscdManagedOnBehalf: profile.qscd,
                                             statusStartingTime: start)
            let xml = try entry.xml()
            if let out = self.out {
                try xml.write(toFile: out, atomically: true, encoding: .utf8)
                print("trusted-list entry for \(certificate.subject) written to \(out)")
            } else {
                print(xml, terminator: "")
            }
        }
    }

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate the CA key pair in the token and write its self-signed certificate, then the time-stamping authority's key and certificate (idempotent).")

        @OptionGroup var identity: CAIdentityOptions

        func run() async throws {
            let configuration = try ServerConfiguration.load(path: self.identity.config)
            let algorithm = try self.identity.keyAlgorithm()
            let token = try CA.openToken(configuration)
            defer { token.close() }
            let ca = try await self.certificateAuthority(configuration: configuration, token: token, algorithm: algorithm)
            try await Self.timeStampAuthority(configuration: configuration, token: token, ca: ca, organization: self.identity.organization)
        }

        /// The CA, made now when neither its key nor its certificate exist.
        func certificateAuthority(configuration: ServerConfiguration, token: Token, algorithm: KeyAlgorithm) async throws -> CertificateAuthority {
            let hasKey = try await token.containsKey(id: configuration.caKeyID)
            let hasFile = FileManager.default.fileExists(atPath: configuration.caCertificate)
            switch (hasKey, hasFile) {
            case (true, true):
                let pem = try String(contentsOfFile: configuration.caCertificate, encoding: .utf8)
                var chain: [Certificate] = []
                if FileManager.default.fileExists(atPath: configuration.caChain) {
                    chain = try CertificateAuthority.certificates(pem: try String(contentsOfFile: configuration.caChain, encoding: .utf8), what: configuration.caChain)
                }
                let ca = try CertificateAuthority(token: token, keyID: configuration.caKeyID, certificate: try Certificate(pemEncoded: pem), chain: chain,
                                                  profile: try configuration.holderProfile())
                try await ca.checkKeyInToken()
                print("CA already set up: \(configuration.caCertificate) matches key '\(configuration.caKeyID)' in the token")
                return ca
            case (false, false):
                let name = try self.identity.name(commonName: nil)
                let ca = try await CertificateAuthority.create(token: token, keyID: configuration.caKeyID, algorithm: algorithm, name: name, now: Date(),
                                                               profile: try configuration.holderProfile())
                try FileManager.default.createDirectory(at: URL(fileURLWithPath: configuration.caCertificate).deletingLastPathComponent(), withIntermediateDirectories: true)
                try ca.certificatePEM.write(toFile: configuration.caCertificate, atomically: true, encoding: .utf8)
                print("CA key '\(configuration.caKeyID)' generated in the token; certificate written to \(configuration.caCertificate)")
                return ca
            case (true, false):
                throw ValidationError("key '\(configuration.caKeyID)' is in the token but \(configuration.caCertificate) is missing: restore the certificate, or install the root's certificate for it with `sigillo ca import`")
            case (false, true):
                throw ValidationError("\(configuration.caCertificate) exists but its key '\(configuration.caKeyID)' is not in the token")
            }
        }

        /// The time-stamping authority: a key in the token and a certificate the CA issues (EKU timeStamping), made now
        /// when neither exists (an installation from before the TSA gets one).
        static func timeStampAuthority(configuration: ServerConfiguration, token: Token, ca: CertificateAuthority, organization: String) async throws {
            let hasKey = try await token.containsKey(id: configuration.tsaKeyID)
            let hasFile = FileManager.default.fileExists(atPath: configuration.tsaCertificate)
            switch (hasKey, hasFile) {
            case (true, true):
                let pem = try String(contentsOfFile: configuration.tsaCertificate, encoding: .utf8)
                let tsa = try TimeStampAuthority(token: token, keyID: configuration.tsaKeyID, certificate: try Certificate(pemEncoded: pem),
                                                 chain: ca.chainDER, settings: try configuration.timeStampSettings())
                try await tsa.checkKeyInToken()
                print("TSA already set up: \(configuration.tsaCertificate) matches key '\(configuration.tsaKeyID)' in the token")
            case (false, false):
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

/// What `ca init` and `ca csr` both take: the configuration, and the CA key's algorithm and name when they make it.
struct CAIdentityOptions: ParsableArguments {
    @Option(help: "JSON configuration file (as for serve).")
    var config: String?

    @Option(help: "CA key algorithm, when the key is generated: ecdsa-p384, ecdsa-p256, rsa-3072, rsa-4096.")
    var algorithm: String = "ecdsa-p384"

    @Option(help: "Organization in the CA's name.")
    var organization: String = "Sigillo Development"

    @Option(help: "The organization's identifier in the CA's name, e.g. VATIT-12345678901.")
    var organizationIdentifier: String?

    func keyAlgorithm() throws -> KeyAlgorithm {
        guard let algorithm = KeyAlgorithm(rawValue: self.algorithm) else { throw ValidationError("unknown algorithm \(self.algorithm)") }
        return algorithm
    }

    /// The CA's name: `commonName`, or "<organization> Qualified Signature CA".
    func name(commonName: String?) throws -> DistinguishedName {
        try CA.name(organization: self.organization, organizationIdentifier: self.organizationIdentifier,
                    commonName: commonName ?? "\(self.organization) Qualified Signature CA")
    }
}
