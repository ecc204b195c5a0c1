import Foundation
import PKCS11
import CSCClient
import CSCProtocol
import SigilloTestSupport
import Testing

@Suite("FileHasher")
struct FileHasherTests {
    /// openssl's digest of the same file: an independent reference.
    func openssl(_ algorithm: HashAlgorithm, _ path: String) throws -> String {
        let result = try run("openssl", ["dgst", "-\(algorithm.rawValue)", "-r", path])
        return String(result.output.split(separator: " ")[0])
    }

    func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test("streaming digests match openssl, across chunk boundaries", arguments: HashAlgorithm.allCases)
    func matchesOpenSSL(algorithm: HashAlgorithm) async throws {
        let directory = try TestHSM.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var generator = SystemRandomNumberGenerator()
        // Sizes around the chunk size (4096 here) and empty.
        for size in [0, 1, 4095, 4096, 4097, 3 * 4096 + 17, 1_000_003] {
            let path = directory.appendingPathComponent("f\(size)").path
            try Data((0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }).write(to: URL(fileURLWithPath: path))
            let hasher = FileHasher(algorithm: algorithm, chunkSize: 4096)
            let digest = try await hasher.hash(file: path)
            #expect(digest.count == algorithm.digestLength)
            #expect(self.hex(digest) == (try self.openssl(algorithm, path)), "size \(size)")
        }
    }

    @Test("many files hashed in parallel come back in input order")
    func manyFiles() async throws {
        let directory = try TestHSM.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let paths = try (0..<200).map { index -> String in
            let path = directory.appendingPathComponent("doc-\(index).txt").path
            try Data(String(repeating: "document \(index)\n", count: index * 50 + 1).utf8).write(to: URL(fileURLWithPath: path))
            return path
        }
        let bytes = ByteCounter()
        let digests = try await FileHasher(parallelism: 2).hash(files: paths) { bytes.add($0) }
        #expect(digests.count == paths.count)
        for (path, digest) in zip(paths, digests) {
            #expect(self.hex(digest) == (try self.openssl(.sha256, path)))
        }
        let total = try paths.reduce(0) { $0 + (try FileManager.default.attributesOfItem(atPath: $1)[.size] as! Int) }
        #expect(bytes.total == total)
    }

    @Test("a missing file is a clear error, not a crash")
    func missingFile() async throws {
        await #expect(throws: FileError.self) { _ = try await FileHasher().hash(files: ["/nonexistent/file.pdf"]) }
    }
}

final class ByteCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func add(_ count: Int) { self.lock.withLock { self.value += count } }
    var total: Int { self.lock.withLock { self.value } }
}
