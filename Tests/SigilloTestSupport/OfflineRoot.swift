import Foundation

/// A provider's offline root CA made with the `openssl` command line in a folder of the test's own: it certifies an
/// issuing CA from its PKCS#10 request, as the root ceremony does in production (README, "The CA hierarchy").
public struct OfflineRoot: Sendable {
    /// The folder with `root.pem`, `root-key.pem` and what the root signs.
    public let directory: URL
    /// The root certificate, PEM.
    public var certificateFile: String { self.directory.appendingPathComponent("root.pem").path }
    var keyFile: String { self.directory.appendingPathComponent("root-key.pem").path }

    /// A new root: EC P-384 key, self-signed, basicConstraints CA critical, keyUsage keyCertSign + cRLSign critical.
    public init(in directory: URL, commonName: String = "Sigillo Test Root CA") throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.directory = directory
        let result = try run("openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes", "-keyout", self.keyFile, "-out", self.certificateFile,
            "-days", "7300", "-sha384", "-subj", "/C=IT/O=Sigillo Test/organizationIdentifier=VATIT-00000000000/CN=\(commonName)",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash",
        ])
        guard result.status == 0 else { throw BackgroundProcessError(description: "openssl could not make the root: \(result.output)") }
    }

    /// The root certifies the issuing CA whose PKCS#10 request is `requestFile`: the certificate (PEM) is written to
    /// `out`. The root checks the request's signature first (`openssl req -verify`).
    ///
    /// Extensions (EN 319 412-2 §4.3 and RFC 5280 for a CA): basicConstraints CA:TRUE pathlen 0 and keyUsage
    /// keyCertSign + cRLSign, both critical; subject and authority key identifiers; certificatePolicies anyPolicy;
    /// the root's CRL distribution point.
    public func certify(requestFile: String, out: String, days: Int = 3650) throws {
        let verified = try run("openssl", ["req", "-in", requestFile, "-noout", "-verify"])
        guard verified.status == 0 else { throw BackgroundProcessError(description: "the request's signature does not verify: \(verified.output)") }
        let extensions = self.directory.appendingPathComponent("issuing-ca.ext").path
        try Data("""
            basicConstraints=critical,CA:TRUE,pathlen:0
            keyUsage=critical,keyCertSign,cRLSign
            subjectKeyIdentifier=hash
            authorityKeyIdentifier=keyid
            certificatePolicies=2.5.29.32.0
            crlDistributionPoints=URI:http://root.example.it/root.crl

            """.utf8).write(to: URL(fileURLWithPath: extensions))
        let signed = try run("openssl", [
            "x509", "-req", "-in", requestFile, "-CA", self.certificateFile, "-CAkey", self.keyFile, "-set_serial", "0x" + Self.randomSerialHex(),
            "-days", "\(days)", "-sha384", "-extfile", extensions, "-out", out,
        ])
        guard signed.status == 0 else { throw BackgroundProcessError(description: "openssl could not certify the request: \(signed.output)") }
    }

    static func randomSerialHex() -> String {
        "4" + (0..<31).map { _ in String(Int.random(in: 0..<16), radix: 16) }.joined()
    }
}
