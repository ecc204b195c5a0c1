import Foundation
import SwiftASN1

/// Small readers over `ASN1Node` for the structures this module parses by hand (time-stamp replies, OCSP
/// responses, CRLs): swift-asn1 gives the nodes, these name the few checks every parser repeats.
enum DERReading {
    /// The children of a constructed node with `identifier`.
    ///
    /// - Throws: `CMSError` naming `what` when the node is primitive or has another tag.
    static func children(_ node: ASN1Node, _ identifier: ASN1Identifier = .sequence, what: String) throws -> [ASN1Node] {
        guard node.identifier == identifier, case .constructed(let nodes) = node.content else {
            throw CMSError("\(what): expected \(identifier), found \(node.identifier)")
        }
        return Array(nodes)
    }

    /// The content octets of a primitive node with `identifier`.
    static func primitive(_ node: ASN1Node, _ identifier: ASN1Identifier, what: String) throws -> ArraySlice<UInt8> {
        guard node.identifier == identifier, case .primitive(let bytes) = node.content else {
            throw CMSError("\(what): expected a primitive \(identifier), found \(node.identifier)")
        }
        return bytes
    }

    /// Parses `bytes` as one whole DER value.
    static func parse(_ bytes: [UInt8], what: String) throws -> ASN1Node {
        do {
            let node = try DER.parse(bytes)
            guard node.encodedBytes.count == bytes.count else { throw CMSError("\(what): trailing bytes after the DER value") }
            return node
        } catch let error as CMSError {
            throw error
        } catch {
            throw CMSError("\(what): not DER: \(error)")
        }
    }

    /// The magnitude of a DER INTEGER's content, without leading zero bytes (an empty array for zero): how
    /// serial numbers and nonces are compared whatever their sign padding.
    static func magnitude(_ content: some Collection<UInt8>) -> [UInt8] {
        Array(content.drop { $0 == 0 })
    }

    /// A `GeneralizedTime` or `UTCTime` node as a date (UTC).
    static func date(_ node: ASN1Node, what: String) throws -> Date {
        var components = DateComponents()
        components.timeZone = TimeZone(identifier: "UTC")
        do {
            switch node.identifier {
            case .generalizedTime:
                let time = try GeneralizedTime(derEncoded: node)
                (components.year, components.month, components.day) = (time.year, time.month, time.day)
                (components.hour, components.minute, components.second) = (time.hours, time.minutes, time.seconds)
                components.nanosecond = Int(time.fractionalSeconds * 1_000_000_000)
            case .utcTime:
                let time = try UTCTime(derEncoded: node)
                (components.year, components.month, components.day) = (time.year, time.month, time.day)
                (components.hour, components.minute, components.second) = (time.hours, time.minutes, time.seconds)
            default:
                throw CMSError("\(what): not a time")
            }
        } catch let error as CMSError {
            throw error
        } catch {
            throw CMSError("\(what): malformed time: \(error)")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let date = calendar.date(from: components) else { throw CMSError("\(what): impossible date") }
        return date
    }

    /// The value of an `ENUMERATED` (tag 10) that fits in an `Int`.
    static func enumerated(_ node: ASN1Node, what: String) throws -> Int {
        let bytes = try self.primitive(node, ASN1Identifier(tagWithNumber: 10, tagClass: .universal), what: what)
        guard !bytes.isEmpty, bytes.count <= 4, bytes.first! & 0x80 == 0 else { throw CMSError("\(what): malformed ENUMERATED") }
        return bytes.reduce(0) { $0 << 8 | Int($1) }
    }

    /// Context-specific tag `number` (constructed or not: the tag number and class are what `ASN1Identifier` compares).
    static func context(_ number: UInt) -> ASN1Identifier {
        ASN1Identifier(tagWithNumber: number, tagClass: .contextSpecific)
    }
}
