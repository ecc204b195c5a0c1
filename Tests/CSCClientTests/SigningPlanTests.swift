import Foundation
import CSCClient
import CSCProtocol
import SigilloTestSupport
import Testing

@Suite("Client signing plan")
struct SigningPlanTests {
    @Test("batches split into authorizations of at most multisign signatures")
    func rounds() {
        #expect(SigningPlan.rounds(count: 0, multisign: 10) == [])
        #expect(SigningPlan.rounds(count: 3, multisign: 10) == [0..<3])
        #expect(SigningPlan.rounds(count: 10, multisign: 10) == [0..<10])
        #expect(SigningPlan.rounds(count: 25, multisign: 10) == [0..<10, 10..<20, 20..<25])
        #expect(SigningPlan.rounds(count: 3, multisign: 1) == [0..<1, 1..<2, 2..<3])
        #expect(SigningPlan.rounds(count: 2, multisign: 0) == [0..<1, 1..<2])
    }

    @Test("signatures go next to the file or into the output folder; clashes are refused")
    func paths() throws {
        #expect(SigningPlan.signaturePath(for: "/a/b/contract.pdf", outputDirectory: nil) == "/a/b/contract.pdf.p7s")
        #expect(SigningPlan.signaturePath(for: "/a/b/contract.pdf", outputDirectory: "/out") == "/out/contract.pdf.p7s")
        #expect(try SigningPlan.signaturePaths(for: ["/a/x.pdf", "/b/x.pdf"], outputDirectory: nil) == ["/a/x.pdf.p7s", "/b/x.pdf.p7s"])
        #expect(throws: FileError.self) { try SigningPlan.signaturePaths(for: ["/a/x.pdf", "/b/x.pdf"], outputDirectory: "/out") }
    }

    @Test("algorithm OIDs requested from the service")
    func algorithms() {
        #expect(SigningPlan.hashAlgorithmOID(.sha256) == "2.16.840.1.101.3.4.2.1")
        #expect(SigningPlan.hashAlgorithmOID(.sha512) == "2.16.840.1.101.3.4.2.3")
        #expect(SigningPlan.signAlgorithmOID(keyType: .ec, hash: .sha256, offered: []) == "1.2.840.10045.4.3.2")
        #expect(SigningPlan.signAlgorithmOID(keyType: .ec, hash: .sha384, offered: []) == "1.2.840.10045.4.3.3")
        #expect(SigningPlan.signAlgorithmOID(keyType: .rsa, hash: .sha256, offered: []) == "1.2.840.113549.1.1.11")
        #expect(
            SigningPlan.signAlgorithmOID(keyType: .rsa, hash: .sha256, offered: ["1.2.840.113549.1.1.1", "1.2.840.113549.1.1.11"])
                == "1.2.840.113549.1.1.11")
        #expect(SigningPlan.signAlgorithmOID(keyType: .rsa, hash: .sha256, offered: ["1.2.840.113549.1.1.1"]) == "1.2.840.113549.1.1.1")
    }

    @Test("byte counts")
    func sizes() {
        #expect(SigningPlan.formatBytes(512) == "512 B")
        #expect(SigningPlan.formatBytes(1536) == "1.5 KiB")
        #expect(SigningPlan.formatBytes(3 * 1024 * 1024 * 1024) == "3.0 GiB")
    }
}
