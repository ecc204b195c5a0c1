import Foundation
import CSCProtocol
import PKCS11
import SigilloCMS

/// The pure decisions of a client signing session: where signatures go, how a batch is split into
/// authorizations, which algorithms to ask for. No I/O, so they are tested on their own.
public enum SigningPlan {
    /// Consecutive index ranges of at most `multisign` items covering `0..<count`: one authorization
    /// (and one OTP) per range.
    public static func rounds(count: Int, multisign: Int) -> [Range<Int>] {
        let size = max(1, multisign)
        return stride(from: 0, to: count, by: size).map { $0..<min($0 + size, count) }
    }

    /// `FILE.p7s` next to the file, or `DIRECTORY/<file name>.p7s`.
    public static func signaturePath(for file: String, outputDirectory: String?) -> String {
        let url = URL(fileURLWithPath: file)
        guard let outputDirectory else { return url.path + ".p7s" }
        return URL(fileURLWithPath: outputDirectory).appendingPathComponent(url.lastPathComponent + ".p7s").path
    }

    /// The signature paths of `files`, refusing two files that would write the same signature.
    ///
    /// - Throws: ``FileError`` naming the clashing files.
    public static func signaturePaths(for files: [String], outputDirectory: String?) throws -> [String] {
        var seen: [String: String] = [:]
        return try files.map { file in
            let path = Self.signaturePath(for: file, outputDirectory: outputDirectory)
            if let other = seen[path] {
                throw FileError("\(other) and \(file) would both be signed into \(path)")
            }
            seen[path] = file
            return path
        }
    }

    /// The dotted OID of a hash algorithm (`hashAlgo`).
    public static func hashAlgorithmOID(_ hash: HashAlgorithm) -> String {
        switch hash {
        case .sha256: OID.sha256
        case .sha384: OID.sha384
        case .sha512: OID.sha512
        }
    }

    /// The `signAlgo` to request for a key: ECDSA with the digest's hash for EC keys; for RSA keys
    /// sha*WithRSAEncryption, or rsaEncryption when the service lists only that one in `key.algo`.
    public static func signAlgorithmOID(keyType: SignerCertificate.KeyType, hash: HashAlgorithm, offered: [String]) -> String {
        switch keyType {
        case .ec:
            switch hash {
            case .sha256: return OID.ecdsaSHA256
            case .sha384: return OID.ecdsaSHA384
            case .sha512: return OID.ecdsaSHA512
            }
        case .rsa:
            let preferred = switch hash {
            case .sha256: OID.sha256WithRSA
            case .sha384: OID.sha384WithRSA
            case .sha512: OID.sha512WithRSA
            }
            let plain = OID.rsaEncryption
            if !offered.isEmpty, !offered.contains(preferred), offered.contains(plain) { return plain }
            return preferred
        }
    }

    /// `1.5 GiB`, `12.0 MiB`, `512 B`.
    public static func formatBytes(_ count: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = count
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(Int(value)) B" : String(format: "%.1f", value) + " " + units[unit]
    }
}
