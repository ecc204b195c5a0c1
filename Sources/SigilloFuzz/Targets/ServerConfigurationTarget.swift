import Crypto
import Foundation
import SigilloServer
import X509

/// The server configuration as `sigillo serve --config FILE` reads it: the file (`ServerConfiguration.load`), the
/// `SIGILLO_*` environment over it, then what start-up derives from it without opening anything (the token
/// configuration, including `pkcs11:` URIs, the holder certificates' qualified profile, and the mail delivery: sender
/// address, SMTP settings, TLS context).
///
/// The input is the file; after a NUL byte, if any, come `NAME=value` lines used as the environment. Paths the
/// configuration names are not read: the SMTP CA file and password file are replaced by the target's own (a CA of
/// one certificate also spares loading the system trust store, 20 ms, for each input). Checked: whatever is wrong is
/// a `ConfigurationError` (a message naming it), not any other error or a crash.
enum ServerConfigurationTarget {
    static let target = FuzzTarget(name: "server-config", summary: "sigillo serve --config FILE (JSON) and SIGILLO_* variables") {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sigillo-fuzz-config-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("sigillo.json").path
        let password = folder.appendingPathComponent("smtp.password").path
        try Data("password\n".utf8).write(to: URL(fileURLWithPath: password))
        let relayCA = folder.appendingPathComponent("relay-ca.pem").path
        try Data(Self.relayCAPEM().utf8).write(to: URL(fileURLWithPath: relayCA))
        Self.folder = folder
        atexit { if let folder = ServerConfigurationTarget.folder { try? FileManager.default.removeItem(at: folder) } }
        return { bytes in Self.run(bytes, file: file, passwordFile: password, caFile: relayCA) }
    }

    /// A self-signed certificate standing for the relay's CA.
    static func relayCAPEM() throws -> String {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("fuzz relay CA") }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey), notValidBefore: Date(),
            notValidAfter: Date().addingTimeInterval(86_400), issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil)) },
            issuerPrivateKey: .init(key))
        return try certificate.serializeAsPEM().pemString
    }

    nonisolated(unsafe) static var folder: URL?

    static func run(_ bytes: [UInt8], file: String, passwordFile: String, caFile: String) {
        let json = bytes.prefix { $0 != 0 }
        var environment: [String: String] = [:]
        for line in String(decoding: bytes.dropFirst(json.count + 1), as: UTF8.self).split(separator: "\n") {
            let pair = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if pair.count == 2 { environment[String(pair[0])] = String(pair[1]) }
        }
        // An empty file is written as one blank (the same refusal: not JSON): Foundation 6.3's
        // `FileManager.contents(atPath:)` leaks 4 KiB on a file of size 0, which LeakSanitizer would pin on this target.
        let contents = json.isEmpty ? Data(" ".utf8) : Data(json)
        guard (try? contents.write(to: URL(fileURLWithPath: file))) != nil else { FuzzCheck.fail("cannot write \(file)") }
        var configuration: ServerConfiguration
        do {
            configuration = try ServerConfiguration.load(path: file, environment: environment)
        } catch is ConfigurationError {
            return
        } catch {
            FuzzCheck.fail("load refused the configuration with \(type(of: error)) instead of a ConfigurationError: \(error)")
        }
        if configuration.smtp != nil {
            configuration.smtp?.caFile = caFile
            if configuration.smtp?.passwordFile != nil { configuration.smtp?.passwordFile = passwordFile }
        }
        _ = try? configuration.tokenConfiguration()
        do {
            _ = try configuration.holderProfile()
        } catch is ConfigurationError {
        } catch {
            FuzzCheck.fail("holderProfile refused the configuration with \(type(of: error)) instead of a ConfigurationError: \(error)")
        }
        do {
            _ = try configuration.mailDelivery(environment: environment)
        } catch is ConfigurationError {
        } catch {
            FuzzCheck.fail("mailDelivery refused the configuration with \(type(of: error)) instead of a ConfigurationError: \(error)")
        }
    }
}
