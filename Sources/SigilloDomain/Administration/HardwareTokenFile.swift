import Foundation

/// A manufacturer's seed file of hardware display tokens: one token per line, `serial,seed-hex[,digits[,algorithm]]`,
/// `#` comments and blank lines skipped (`sigillo admin import-tokens`, `POST /admin/v1/hardware-tokens`). Lines end
/// with LF or CRLF (files made on Windows).
public enum HardwareTokenFile {
    /// The tokens listed in `csv`, in order. All or nothing: one bad line refuses the file, naming the line.
    /// - Throws: `SigilloError.invalidRequest` for a bad line or a file that lists no token.
    public static func parse(_ csv: String) throws -> [HardwareToken] {
        var tokens: [HardwareToken] = []
        // By character, "\r\n" is one newline, not "\n": splitting on "\n" alone made a CRLF file one long line.
        for (number, raw) in csv.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard (2...4).contains(fields.count), !fields[0].isEmpty, fields[0].count <= 64,
                  let seed = Hex.bytes(fields[1]), seed.count >= 16,
                  let digits = fields.count > 2 ? Int(fields[2]) : 6, HOTP.digitRange.contains(digits),
                  let algorithm = fields.count > 3 ? OTPAlgorithm(rawValue: fields[3].uppercased()) : .sha1 else {
                throw SigilloError(.invalidRequest, "line \(number + 1): expected serial,seed-hex (16+ bytes)[,digits 6-8[,SHA1|SHA256|SHA512]]")
            }
            tokens.append(HardwareToken(serial: fields[0], seed: seed, digits: digits, algorithm: algorithm))
        }
        guard !tokens.isEmpty else { throw SigilloError(.invalidRequest, "the file lists no tokens") }
        return tokens
    }
}
