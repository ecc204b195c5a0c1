import ArgumentParser
import Foundation
import PKCS11
import SigilloCMS
import CSCClient
import CSCProtocol
import SigilloDomain
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension HashAlgorithm: ExpressibleByArgument {}

extension CAdESLevel: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { Self.allCases.map(\.rawValue) }
}

/// `sigillo sign`: detached CAdES signatures of local files, or one raw digest, with a remote CSC service.
struct Sign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign files (detached CAdES B-B, B-T or B-LT, FILE.p7s) or a raw digest with a remote signing service.",
        discussion: """
            Levels (ETSI EN 319 122-1): B-B is the signature; B-T adds an RFC 3161 signature-time-stamp, from --tsa URL \
            (or SIGILLO_TSA_URL), else from the signing service's CSC v2 signatures/timestamp; B-LT also embeds the \
            certificate chain, the signer's CRL and an OCSP response, fetched after the time-stamp, so the signature \
            validates offline. The default is B-T when a time-stamping authority is available, B-B otherwise.

            Files are hashed here; only their digests travel. Every file of the run is authorized with one \
            password + OTP when the credential allows that many signatures (its `multisign`); otherwise a new \
            OTP is asked for each group.

            Password and OTP: prompted without echo in a terminal; otherwise from SIGILLO_PASSWORD and \
            SIGILLO_OTP, or with --password-stdin from standard input (the password on the first line, then \
            one OTP line per authorization).
            """
    )

    @Argument(help: "Files to sign.")
    var files: [String] = []

    @Option(help: "Sign this raw digest (hex) instead of files; prints the base64 signature.")
    var hash: String?

    @Option(help: "The signing service.")
    var server: String = "https://127.0.0.1:8443"

    @Option(help: "CA certificates (PEM) the server's TLS certificate must chain to (default: certs/tls-ca.pem when present, else the system's trust store).")
    var ca: String?

    @Option(help: "Username (default: SIGILLO_USERNAME, else asked).")
    var username: String?

    @Option(help: "Credential ID (default: the holder's only credential).")
    var credential: String?

    @Option(help: "Digest algorithm for files: sha256, sha384 or sha512.")
    var hashAlgorithm: HashAlgorithm = .sha256

    @Option(help: "Write the .p7s files here instead of next to each file.")
    var outputDir: String?

    @Option(help: ArgumentHelp("CAdES level: B-B, B-T or B-LT (default: B-T when a time-stamping authority is available, else B-B).", valueName: "level"))
    var level: CAdESLevel?

    @Option(help: ArgumentHelp("RFC 3161 time-stamping authority (default: SIGILLO_TSA_URL, else the service's signatures/timestamp).", valueName: "url"))
    var tsa: String?

    @Flag(help: "Read the password, then one OTP per authorization, from standard input (one per line).")
    var passwordStdin = false

    @Flag(help: "No progress or summary on standard error.")
    var quiet = false

    func validate() throws {
        if self.hash == nil, self.files.isEmpty {
            throw ValidationError("give files to sign, or --hash HEX")
        }
        if let hash = self.hash {
            guard self.files.isEmpty else { throw ValidationError("--hash signs one digest: give no files with it") }
            guard let digest = Hex.bytes(hash), HashAlgorithm(digestLength: digest.count) != nil else {
                throw ValidationError("--hash must be a SHA-256, SHA-384 or SHA-512 digest in hex (64, 96 or 128 digits)")
            }
            guard self.outputDir == nil else { throw ValidationError("--output-dir is for files") }
            guard self.level == nil, self.tsa == nil else { throw ValidationError("--level and --tsa are for files: --hash returns a bare signature") }
        }
        if let tsa = self.tsa {
            guard let url = URL(string: tsa), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
                throw ValidationError("--tsa must be an http:// or https:// URL")
            }
        }
    }

    func run() async throws {
        let secrets = Secrets(fromStandardInput: self.passwordStdin)
        if let hash = self.hash {
            try await self.signDigest(Hex.bytes(hash)!, secrets: secrets)
        } else {
            try await self.signFiles(secrets: secrets)
        }
    }

    // MARK: - Files

    func signFiles(secrets: Secrets) async throws {
        for file in self.files {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw SignFailure("\(file): no such file")
            }
        }
        if let outputDir = self.outputDir {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: outputDir, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw SignFailure("\(outputDir): no such directory")
            }
        }
        let outputs = try SigningPlan.signaturePaths(for: self.files, outputDirectory: self.outputDir)

        // 1. Hash every file here, in parallel.
        let sizes = self.files.map { (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int) ?? 0 }
        let total = sizes.reduce(0, +)
        let showProgress = !self.quiet && isatty(STDERR_FILENO) == 1 && (total >= 32 << 20 || self.files.count >= 20)
        let progress = showProgress ? ProgressBar(total: total, label: "hashing \(self.files.count) file(s)") : nil
        var onProgress: (@Sendable (Int) -> Void)? = nil
        if let progress { onProgress = { progress.add($0) } }
        let digests = try await FileHasher(algorithm: self.hashAlgorithm).hash(files: self.files, progress: onProgress)
        progress?.finish()

        // 2. Log in, find the credential and its certificate chain.
        try await self.withSession(secrets: secrets) { session in
            try await self.sign(digests: digests, outputs: outputs, session: session, secrets: secrets)
        }
    }

    /// Builds, authorizes, signs, time-stamps and writes the `.p7s` of every file at the level asked for.
    func sign(digests: [[UInt8]], outputs: [String], session: Session, secrets: Secrets) async throws {
        let publication = PublicationClient()
        do {
            try await self.sign(digests: digests, outputs: outputs, session: session, secrets: secrets, publication: publication)
        } catch {
            try? await publication.shutdown()
            throw error
        }
        try await publication.shutdown()
    }

    func sign(digests: [[UInt8]], outputs: [String], session: Session, secrets: Secrets, publication: PublicationClient) async throws {
        let builder = try CAdESBuilder(
            signerCertificate: session.info.certificates[0],
            chain: Array(session.info.certificates.dropFirst()),
            digestAlgorithm: self.hashAlgorithm
        )
        // Before any OTP is spent: the level, its time-stamping authority, and for B-LT the signer's issuer.
        let (level, stamper) = try await self.resolveLevel(session: session, publication: publication)
        let issuer = level >= .lt ? try RevocationFetcher.issuer(of: builder.signer, in: session.info.certificates) : nil

        // 3. The digest of each file's signed attributes: what the service signs.
        let signingTime = Date()
        let prepared = try digests.map { try builder.prepare(contentDigest: $0, signingTime: signingTime) }
        let signAlgorithm = SigningPlan.signAlgorithmOID(
            keyType: builder.signer.keyType, hash: self.hashAlgorithm, offered: session.info.keyAlgorithms)

        // 4. One authorization (one OTP) and one signHash per group of at most `multisign` files.
        let rounds = SigningPlan.rounds(count: prepared.count, multisign: session.info.multisign)
        for (number, round) in rounds.enumerated() {
            let hashes = prepared[round].map(\.digestToSign)
            let otp = try secrets.otp(
                needed: session.info.otpPresence != "false",
                round: number, of: rounds.count, range: round, total: prepared.count)
            let authorization = try await session.client.authorize(
                credentialID: session.credentialID, hashes: hashes, pin: session.password, otp: otp)
            let signatures = try await session.client.signHash(
                credentialID: session.credentialID, sad: authorization.sad, hashes: hashes,
                hashAlgorithmOID: builder.digestAlgorithmOID, signAlgorithmOID: signAlgorithm)

            // 5. B-T: a signature-time-stamp over each signature value.
            var tokens: [[UInt8]?] = Array(repeating: nil, count: round.count)
            if let stamper {
                for (offset, index) in round.enumerated() {
                    tokens[offset] = try await stamper.timeStamp(signatureValue: try prepared[index].signatureValue(signature: signatures[offset]))
                }
            }
            // 6. B-LT: the signer's revocation data, fetched after the time-stamps, once for the round.
            var validation: ValidationData? = nil
            if let issuer {
                validation = try await RevocationFetcher(http: publication).validationData(signer: builder.signer, issuer: issuer)
            }
            for (offset, index) in round.enumerated() {
                let p7s = try prepared[index].finish(signature: signatures[offset], timeStampToken: tokens[offset], validation: validation)
                try Data(p7s).write(to: URL(fileURLWithPath: outputs[index]), options: .atomic)
                if !self.quiet { Terminal.error("signed \(self.files[index]) → \(outputs[index]) (CAdES \(level.rawValue))") }
            }
        }
    }

    /// The level to write and, from B-T on, its time-stamper (`LevelChoice`: `--tsa`, else `SIGILLO_TSA_URL`, else the
    /// service's `signatures/timestamp`).
    func resolveLevel(session: Session, publication: PublicationClient) async throws -> (CAdESLevel, TimeStamper?) {
        let choice = try await LevelChoice.resolve(
            requested: self.level, tsaURL: self.tsa ?? ProcessInfo.processInfo.environment["SIGILLO_TSA_URL"], server: self.server
        ) {
            try await session.client.serviceMethods()
        }
        return (choice.level, choice.source.map { TimeStamper(source: $0, service: session.client, http: publication) })
    }

    // MARK: - One digest

    func signDigest(_ digest: [UInt8], secrets: Secrets) async throws {
        let hash = HashAlgorithm(digestLength: digest.count)!
        try await self.withSession(secrets: secrets) { session in
            let signer = try SignerCertificate(der: session.info.certificates[0])
            let otp = try secrets.otp(needed: session.info.otpPresence != "false", round: 0, of: 1, range: 0..<1, total: 1)
            let authorization = try await session.client.authorize(
                credentialID: session.credentialID, hashes: [digest], pin: session.password, otp: otp)
            let signatures = try await session.client.signHash(
                credentialID: session.credentialID, sad: authorization.sad, hashes: [digest],
                hashAlgorithmOID: SigningPlan.hashAlgorithmOID(hash),
                signAlgorithmOID: SigningPlan.signAlgorithmOID(keyType: signer.keyType, hash: hash, offered: session.info.keyAlgorithms))
            print(Data(signatures[0]).base64EncodedString())
        }
    }

    // MARK: - Session

    struct Session {
        let client: CSCClient
        let credentialID: String
        let info: CSCCredentialInfo
        /// Sent again as `PIN` with each authorization.
        let password: String
    }

    /// Runs `body` with an open session, and closes the client's connections whatever happens.
    func withSession(secrets: Secrets, _ body: (Session) async throws -> Void) async throws {
        let session = try await self.openSession(secrets: secrets)
        do {
            try await body(session)
        } catch {
            try? await session.client.shutdown()
            throw error
        }
        try await session.client.shutdown()
    }

    /// Logs in, picks the credential and reads its certificates.
    func openSession(secrets: Secrets) async throws -> Session {
        let username = try self.username ?? secrets.username()
        let password = try secrets.password(for: username)
        let client = try CSCClient(baseURL: self.server, trustRootsPEMFile: try self.trustRoots())
        do {
            try await client.login(username: username, password: password)
            let credentialID: String
            if let credential = self.credential {
                credentialID = credential
            } else {
                let credentials = try await client.listCredentials()
                guard credentials.count == 1 else {
                    throw SignFailure(
                        credentials.isEmpty
                            ? "\(username) has no credential"
                            : "\(username) has \(credentials.count) credentials; choose one with --credential: \(credentials.joined(separator: ", "))")
                }
                credentialID = credentials[0]
            }
            let info = try await client.credentialInfo(credentialID: credentialID)
            guard !info.certificates.isEmpty else {
                throw SignFailure("credential \(credentialID) has no certificate")
            }
            if let status = info.keyStatus, status != "enabled" {
                throw SignFailure("the key of credential \(credentialID) is \(status)")
            }
            if let status = info.certificateStatus, status != "valid" {
                throw SignFailure("the certificate of credential \(credentialID) is \(status)")
            }
            return Session(client: client, credentialID: credentialID, info: info, password: password)
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// `--ca`, or `certs/tls-ca.pem` when present, or nil for the system's trust store.
    func trustRoots() throws -> String? {
        if let ca = self.ca {
            guard FileManager.default.isReadableFile(atPath: ca) else { throw SignFailure("\(ca): cannot read") }
            return ca
        }
        let development = "certs/tls-ca.pem"
        return FileManager.default.isReadableFile(atPath: development) ? development : nil
    }
}

/// Where the username, password and OTPs come from: standard input lines, the environment, or the terminal.
final class Secrets {
    private let fromStandardInput: Bool
    private let environment = ProcessInfo.processInfo.environment
    private var usedEnvironmentOTP = false

    init(fromStandardInput: Bool) {
        self.fromStandardInput = fromStandardInput
    }

    private var interactive: Bool { isatty(STDIN_FILENO) == 1 }

    func username() throws -> String {
        if let name = self.environment["SIGILLO_USERNAME"], !name.isEmpty { return name }
        guard self.interactive, !self.fromStandardInput else {
            throw SignFailure("no username: use --username or SIGILLO_USERNAME")
        }
        Terminal.error("Username: ", newline: false)
        guard let line = readLine(), !line.isEmpty else { throw SignFailure("no username") }
        return line
    }

    func password(for username: String) throws -> String {
        if self.fromStandardInput {
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw SignFailure("--password-stdin: no password on standard input")
            }
            return line
        }
        if let password = self.environment["SIGILLO_PASSWORD"], !password.isEmpty { return password }
        guard self.interactive else {
            throw SignFailure("no password: set SIGILLO_PASSWORD, use --password-stdin, or run in a terminal")
        }
        return try Terminal.secret("Password for \(username): ")
    }

    /// The OTP of authorization `round` (0-based) of `count`, covering `range` of `total` signatures.
    func otp(needed: Bool, round: Int, of count: Int, range: Range<Int>, total: Int) throws -> String? {
        guard needed else { return nil }
        if self.fromStandardInput {
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw SignFailure("--password-stdin: no OTP line for authorization \(round + 1) of \(count)")
            }
            return line.trimmingCharacters(in: .whitespaces)
        }
        if !self.usedEnvironmentOTP, let otp = self.environment["SIGILLO_OTP"], !otp.isEmpty {
            self.usedEnvironmentOTP = true
            return otp
        }
        guard self.interactive else {
            throw SignFailure(
                count > 1
                    ? "\(total) signatures need \(count) authorizations (one OTP each) and SIGILLO_OTP holds one: use --password-stdin with one OTP line per authorization, or sign fewer files at a time"
                    : "no OTP: set SIGILLO_OTP, use --password-stdin, or run in a terminal")
        }
        let prompt = count == 1
            ? "OTP: "
            : "OTP for signatures \(range.lowerBound + 1)–\(range.upperBound) of \(total)\(round > 0 ? " (wait for a new code)" : ""): "
        return try Terminal.secret(prompt).trimmingCharacters(in: .whitespaces)
    }
}

/// A failure while signing (not a usage error): printed as `Error: <message>` without the usage text.
struct SignFailure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
