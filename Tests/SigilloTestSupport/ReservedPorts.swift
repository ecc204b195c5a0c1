import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Consecutive TCP ports on 127.0.0.1, each held by a bound socket that does not listen: connections to them are
/// refused, and nothing else can bind them until `release()`.
///
/// They are chosen below the kernel's ephemeral range (32768 and up), where no socket bound to port 0 and no outgoing
/// connection of another test lands: a port learnt by binding port 0 and closing it can be taken by any of those.
public final class ReservedPorts: @unchecked Sendable {
    /// The first port; the others follow it.
    public let base: Int
    private let lock = NSLock()
    private var sockets: [Int32]

    public init(count: Int = 1) throws {
        for _ in 0..<200 {
            let base = Int.random(in: 20_000...(32_000 - count))
            var held: [Int32] = []
            for port in base..<(base + count) {
                guard let fd = Self.bind(port) else { break }
                held.append(fd)
            }
            if held.count == count {
                self.base = base
                self.sockets = held
                return
            }
            held.forEach { _ = close($0) }
        }
        throw BackgroundProcessError(description: "no \(count) free consecutive ports in 20000...32000")
    }

    /// Closes the sockets: the ports are free for the program the test starts next.
    public func release() {
        self.lock.withLock {
            self.sockets.forEach { _ = close($0) }
            self.sockets = []
        }
    }

    deinit { self.release() }

    private static func bind(_ port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard bound else {
            _ = close(fd)
            return nil
        }
        return fd
    }
}
