import Foundation
import NIOCore

/// Who a request comes from, as the rate limiter counts it: the TCP peer's IP address, or (only when the peer is a
/// configured trusted proxy) the nearest address in `X-Forwarded-For` that is not itself a trusted proxy.
///
/// IPv4 addresses (IPv4-mapped IPv6 ones too) count one by one; IPv6 addresses by network prefix, since one host
/// usually holds a whole /64 and could otherwise come from 2^64 addresses.
struct ClientAddress: Hashable, Sendable {
    /// The bucket's name: `4:192.0.2.1`, `6:20010db8000000000000000000000000/64`, or `unknown`.
    let key: String

    static let unknown = ClientAddress(key: "unknown")

    /// The address of a request whose TCP peer is `peer`.
    static func of(peer: SocketAddress?, forwardedFor: String?, settings: RateLimitSettings, trusted: Set<[UInt8]>) -> ClientAddress {
        guard var bytes = peer.flatMap(Self.bytes(of:)) else { return .unknown }
        if trusted.contains(bytes), let forwardedFor {
            // Right to left: the last hop a trusted proxy saw is the first address that is not one of ours.
            for entry in forwardedFor.split(separator: ",").reversed() {
                guard let hop = Self.parse(String(entry)) else { break }
                bytes = hop
                if !trusted.contains(hop) { break }
            }
        }
        return ClientAddress(bytes: bytes, ipv6PrefixLength: settings.ipv6PrefixLength)
    }

    init(key: String) {
        self.key = key
    }

    init(bytes: [UInt8], ipv6PrefixLength: Int) {
        if bytes.count == 4 {
            self.key = "4:" + bytes.map(String.init).joined(separator: ".")
        } else {
            var masked = bytes
            for index in masked.indices {
                let kept = min(8, max(0, ipv6PrefixLength - index * 8))
                masked[index] &= kept == 8 ? 0xFF : ~(0xFF >> kept)
            }
            self.key = "6:" + masked.map { String(format: "%02x", $0) }.joined() + "/\(ipv6PrefixLength)"
        }
    }

    /// The 4 or 16 bytes of an IP address in text (`192.0.2.1`, `2001:db8::1`, `[2001:db8::1]:443`, `192.0.2.1:80`).
    static func parse(_ text: String) -> [UInt8]? {
        var text = text.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("["), let end = text.firstIndex(of: "]") {
            text = String(text[text.index(after: text.startIndex)..<end])
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            text = String(text[..<colon])
        }
        guard !text.isEmpty, text.count <= 64, let address = try? SocketAddress(ipAddress: text, port: 0) else { return nil }
        return self.bytes(of: address)
    }

    /// The IP address of `address`, 4 bytes for IPv4 (and IPv4-mapped IPv6), 16 for IPv6; nil for a Unix socket.
    static func bytes(of address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF { return Array(bytes[12...]) }
            return bytes
        case .unixDomainSocket:
            return nil
        }
    }
}
