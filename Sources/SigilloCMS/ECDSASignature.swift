import SwiftASN1

/// ECDSA signature encodings: CMS wants `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`,
/// tokens and some services return raw r‖s.
enum ECDSASignature {
    /// `signature` as DER: returned unchanged when it already is a DER `ECDSA-Sig-Value`, converted when it
    /// is raw r‖s (two halves of equal length).
    ///
    /// - Throws: `CMSError` when it is neither.
    static func der(_ signature: [UInt8]) throws -> [UInt8] {
        if Self.isDER(signature) { return signature }
        guard signature.count % 2 == 0, signature.count >= 2 else {
            throw CMSError("the ECDSA signature is neither DER nor raw r‖s")
        }
        let half = signature.count / 2
        var serializer = DER.Serializer()
        serializer.appendConstructedNode(identifier: .sequence) { serializer in
            for part in [signature[..<half], signature[half...]] {
                serializer.appendPrimitiveNode(identifier: .integer) { bytes in
                    var magnitude = part.drop { $0 == 0 }
                    if magnitude.isEmpty { magnitude = [0] }
                    if magnitude.first! & 0x80 != 0 { bytes.append(0) }
                    bytes.append(contentsOf: magnitude)
                }
            }
        }
        return serializer.serializedBytes
    }

    /// Whether `bytes` is exactly one DER SEQUENCE of two INTEGERs.
    static func isDER(_ bytes: [UInt8]) -> Bool {
        guard let node = try? DER.parse(bytes), node.identifier == .sequence, node.encodedBytes.count == bytes.count,
            case .constructed(let children) = node.content
        else { return false }
        let parts = Array(children)
        return parts.count == 2 && parts.allSatisfy { $0.identifier == .integer }
    }
}
