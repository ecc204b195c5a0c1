import SigilloDomain
import Testing

/// Inputs that once broke a parser of this module, found while fuzzing it (`make fuzz`, README "Fuzzing"), fed to the
/// same function the fuzz target calls.
@Suite("Fuzz regressions: the hardware-token seed file")
struct FuzzRegressionTests {
    @Test("a seed file with CRLF line ends (as made on Windows) lists one token per line")
    func crlfSeedFile() throws {
        // Fuzz target token-csv, seed `crlf`: by character "\r\n" is one newline, so splitting on "\n" read the whole
        // file as one line and refused it ("line 1").
        let csv = "# serial,seed-hex,digits,algorithm\r\nC3,0102030405060708090a0b0c0d0e0f10\r\nC4, 0102030405060708090a0b0c0d0e0f1011 ,7,sha256\r\n"
        let tokens = try HardwareTokenFile.parse(csv)
        #expect(tokens == [
            HardwareToken(serial: "C3", seed: Array(1...16), digits: 6, algorithm: .sha1),
            HardwareToken(serial: "C4", seed: Array(1...17), digits: 7, algorithm: .sha256),
        ])
    }

    @Test("a bad line of a CRLF file is named by its number")
    func crlfLineNumbers() {
        let csv = "C3,0102030405060708090a0b0c0d0e0f10\r\n\r\nC4,0102\r\n"
        let error = #expect(throws: SigilloError.self) { try HardwareTokenFile.parse(csv) }
        #expect(error?.code == .invalidRequest)
        #expect(error?.message.hasPrefix("line 3:") == true)
    }
}
