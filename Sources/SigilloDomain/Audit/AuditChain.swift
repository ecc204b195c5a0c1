import Crypto
import Foundation

/// The audit log's SHA-256 hash chain: each event's hash covers the previous hash and every field.
public enum AuditChain {
    public static let genesis = String(repeating: "0", count: 64)

    public static func hash(previous: String, time: Int64, event: AuditEvent) -> String {
        // Length-prefixed fields, so no two different events serialise the same.
        var data = Data()
        for field in [previous, String(time), event.actor, event.action, event.target, event.outcome, event.details] {
            let bytes = Array(field.utf8)
            data.append(contentsOf: withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { Array($0) })
            data.append(contentsOf: bytes)
        }
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        for byte in SHA256.hash(data: data) {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    /// The first record whose hash or link does not match, or nil if the chain is intact.
    public static func firstBrokenRecord(_ records: [AuditRecord]) -> AuditRecord? {
        var previous = self.genesis
        for record in records {
            let expected = self.hash(previous: previous, time: Int64(record.time.timeIntervalSince1970), event: record.event)
            if record.previousHash != previous || record.hash != expected { return record }
            previous = record.hash
        }
        return nil
    }
}
