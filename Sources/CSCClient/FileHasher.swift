import Crypto
import Dispatch
import Foundation
import PKCS11

/// Streaming SHA-256/384/512 of files, and a parallel "hash many files" on a dedicated Dispatch pool.
///
/// Files are read in fixed chunks (1 MiB) so memory stays flat whatever their size. Hashing is blocking
/// work: the async entry points run it on their own queue and resume the caller through a continuation.
public struct FileHasher: Sendable {
    public let algorithm: HashAlgorithm
    /// How many files are hashed at once by `hash(files:)`.
    public let parallelism: Int
    public let chunkSize: Int

    public init(algorithm: HashAlgorithm = .sha256, parallelism: Int = ProcessInfo.processInfo.activeProcessorCount, chunkSize: Int = 1 << 20) {
        self.algorithm = algorithm
        self.parallelism = max(1, parallelism)
        self.chunkSize = max(4096, chunkSize)
    }

    /// Hashes one file, calling `progress` with the number of bytes read after each chunk. Blocking.
    ///
    /// - Throws: ``FileError`` when the file cannot be opened or read.
    public func hashBlocking(file path: String, progress: ((Int) -> Void)? = nil) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw FileError("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var hasher = AnyHasher(self.algorithm)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: self.chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(descriptor, buffer.baseAddress, self.chunkSize)
            if count < 0 {
                if errno == EINTR { continue }
                throw FileError("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            progress?(count)
        }
        return hasher.finalize()
    }

    /// Hashes one in-memory buffer.
    public func hash(data: some DataProtocol) -> [UInt8] {
        switch self.algorithm {
        case .sha256: return Array(SHA256.hash(data: data))
        case .sha384: return Array(SHA384.hash(data: data))
        case .sha512: return Array(SHA512.hash(data: data))
        }
    }

    /// Hashes many files in parallel (`parallelism` at a time); digests come back in input order.
    ///
    /// - Parameter progress: called from the hashing threads with bytes read; must be thread-safe.
    public func hash(files paths: [String], progress: (@Sendable (Int) -> Void)? = nil) async throws -> [[UInt8]] {
        if paths.isEmpty { return [] }
        let queue = DispatchQueue(label: "sigillo.hasher")
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                let results = Slots<Result<[UInt8], Error>>(count: paths.count, initial: .success([]))
                let workers = min(self.parallelism, paths.count)
                let next = NextIndex()
                // Each iteration is one worker taking files one by one from a shared index.
                DispatchQueue.concurrentPerform(iterations: workers) { _ in
                    while let index = next.claim(below: paths.count) {
                        results[index] = Result { try self.hashBlocking(file: paths[index], progress: progress) }
                    }
                }
                continuation.resume(with: Result { try results.values.map { try $0.get() } })
            }
        }
    }

    /// Hashes one file off the caller's thread.
    public func hash(file path: String, progress: (@Sendable (Int) -> Void)? = nil) async throws -> [UInt8] {
        try await self.hash(files: [path], progress: progress)[0]
    }
}

/// A shared counter handing out indices to worker threads.
final class NextIndex: @unchecked Sendable {
    // Guarded by `lock`.
    private var value = 0
    private let lock = NSLock()

    func claim(below limit: Int) -> Int? {
        self.lock.lock()
        defer { self.lock.unlock() }
        guard self.value < limit else { return nil }
        defer { self.value += 1 }
        return self.value
    }
}

/// Fixed result slots written concurrently, each by exactly one thread.
///
/// `@unchecked Sendable`: slot `i` is written only by the thread that claimed index `i`, and `values` is read
/// only after every writer finished (`concurrentPerform` returns after all iterations).
final class Slots<T>: @unchecked Sendable {
    private let buffer: UnsafeMutableBufferPointer<T>

    init(count: Int, initial: T) {
        self.buffer = .allocate(capacity: count)
        self.buffer.initialize(repeating: initial)
    }

    subscript(index: Int) -> T {
        get { self.buffer[index] }
        set { (self.buffer.baseAddress! + index).pointee = newValue }
    }

    var values: [T] { Array(self.buffer) }

    deinit {
        self.buffer.deinitialize()
        self.buffer.deallocate()
    }
}

/// One incremental hash of the chosen algorithm.
struct AnyHasher {
    private enum State {
        case sha256(SHA256)
        case sha384(SHA384)
        case sha512(SHA512)
    }

    private var state: State

    init(_ algorithm: HashAlgorithm) {
        switch algorithm {
        case .sha256: self.state = .sha256(SHA256())
        case .sha384: self.state = .sha384(SHA384())
        case .sha512: self.state = .sha512(SHA512())
        }
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        switch self.state {
        case .sha256(var hasher):
            hasher.update(bufferPointer: bytes)
            self.state = .sha256(hasher)
        case .sha384(var hasher):
            hasher.update(bufferPointer: bytes)
            self.state = .sha384(hasher)
        case .sha512(var hasher):
            hasher.update(bufferPointer: bytes)
            self.state = .sha512(hasher)
        }
    }

    func finalize() -> [UInt8] {
        switch self.state {
        case .sha256(let hasher): return Array(hasher.finalize())
        case .sha384(let hasher): return Array(hasher.finalize())
        case .sha512(let hasher): return Array(hasher.finalize())
        }
    }
}
