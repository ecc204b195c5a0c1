import Foundation
import SigilloDomain

/// The hardware-token seed file (`sigillo admin import-tokens`, `POST /admin/v1/hardware-tokens`), decoded from the
/// body as the admin API does (UTF-8, invalid bytes replaced). Checked: a refusal is a `SigilloError.invalidRequest`
/// (a 400 naming the line); every token accepted is one the OTP code can use (a serial of 1 to 64 characters, a seed
/// of 16 bytes or more, 6 to 8 digits); writing the tokens back as a file and reading it again gives the same tokens.
enum HardwareTokenCSVTarget {
    static let target = FuzzTarget(name: "token-csv", summary: "hardware OTP token seed file (serial,seed-hex[,digits[,algorithm]])") {
        { bytes in Self.run(String(decoding: bytes, as: UTF8.self)) }
    }

    static func run(_ csv: String) {
        let tokens: [HardwareToken]
        do {
            tokens = try HardwareTokenFile.parse(csv)
        } catch let error as SigilloError {
            FuzzCheck.require(error.code == .invalidRequest, "refused with \(error.code), not invalidRequest")
            return
        } catch {
            FuzzCheck.fail("refused with \(type(of: error)), which the admin API answers 500")
        }
        FuzzCheck.require(!tokens.isEmpty, "accepted a file without tokens")
        for token in tokens {
            FuzzCheck.require(!token.serial.isEmpty && token.serial.count <= 64, "accepted the serial \(token.serial.debugDescription)")
            FuzzCheck.require(token.seed.count >= 16, "accepted a seed of \(token.seed.count) bytes")
            FuzzCheck.require(HOTP.digitRange.contains(token.digits), "accepted \(token.digits) digits")
        }
        let written = tokens.map { "\($0.serial),\($0.seed.map { String(format: "%02x", $0) }.joined()),\($0.digits),\($0.algorithm.rawValue)" }
            .joined(separator: "\n")
        guard let again = try? HardwareTokenFile.parse(written) else { FuzzCheck.fail("the tokens written back are refused: \(written.debugDescription)") }
        FuzzCheck.require(again == tokens, "the tokens change when written back and read again: \(written.debugDescription)")
    }
}
