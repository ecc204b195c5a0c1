/// The few DER encodings the token layer needs: ECDSA signatures and SubjectPublicKeyInfo.
enum DER {
    static func length(_ count: Int) -> [UInt8] {
        if count < 0x80 { return [UInt8(count)] }
        var bytes: [UInt8] = []
        var value = count
        while value > 0 {
            bytes.insert(UInt8(value & 0xFF), at: 0)
            value >>= 8
        }
        return [0x80 | UInt8(bytes.count)] + bytes
    }

    static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        [tag] + self.length(content.count) + content
    }

    static func sequence(_ parts: [UInt8]...) -> [UInt8] {
        self.tlv(0x30, parts.flatMap { $0 })
    }

    /// A non-negative INTEGER from big-endian magnitude bytes.
    static func unsignedInteger<C: Collection>(_ magnitude: C) -> [UInt8] where C.Element == UInt8 {
        var bytes = Array(magnitude.drop(while: { $0 == 0 }))
        if bytes.isEmpty { bytes = [0] }
        if bytes[0] & 0x80 != 0 { bytes.insert(0, at: 0) }
        return self.tlv(0x02, bytes)
    }

    static func bitString(_ content: [UInt8]) -> [UInt8] {
        self.tlv(0x03, [0x00] + content)
    }

    /// `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` from PKCS#11's raw `r ‖ s`.
    ///
    /// On the hot path: one allocation, written in place.
    static func ecdsaSignature(raw: UnsafeRawBufferPointer) -> [UInt8] {
        let half = raw.count / 2
        func trimmed(_ range: Range<Int>) -> (start: Int, pad: Bool) {
            var start = range.lowerBound
            while start < range.upperBound - 1, raw[start] == 0 { start += 1 }
            return (start, raw[start] & 0x80 != 0)
        }
        let r = trimmed(0..<half)
        let s = trimmed(half..<raw.count)
        let rLength = half - r.start + (r.pad ? 1 : 0)
        let sLength = raw.count - s.start + (s.pad ? 1 : 0)
        let content = 2 + rLength + 2 + sLength
        var out: [UInt8] = []
        out.reserveCapacity(content + 3)
        out.append(0x30)
        out.append(contentsOf: self.length(content))
        for (integer, end, length) in [(r, half, rLength), (s, raw.count, sLength)] {
            out.append(0x02)
            out.append(UInt8(length))
            if integer.pad { out.append(0) }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[integer.start..<end]))
        }
        return out
    }

    /// If `bytes` is exactly one DER OCTET STRING, its content; otherwise nil.
    static func octetStringContent(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count >= 2, bytes[0] == 0x04 else { return nil }
        var index = 1
        var length = Int(bytes[index])
        index += 1
        if length & 0x80 != 0 {
            let count = length & 0x7F
            guard count > 0, count <= 4, bytes.count >= index + count else { return nil }
            length = 0
            for _ in 0..<count {
                length = (length << 8) | Int(bytes[index])
                index += 1
            }
        }
        guard bytes.count == index + length else { return nil }
        return Array(bytes[index...])
    }

    static let ecPublicKeyOID: [UInt8] = [0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]
    static let rsaEncryptionOID: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]
    static let null: [UInt8] = [0x05, 0x00]

    static func ecSubjectPublicKeyInfo(curveOID: [UInt8], point: [UInt8]) -> [UInt8] {
        self.sequence(self.sequence(self.ecPublicKeyOID, curveOID), self.bitString(point))
    }

    static func rsaSubjectPublicKeyInfo(modulus: [UInt8], exponent: [UInt8]) -> [UInt8] {
        let rsaPublicKey = self.sequence(self.unsignedInteger(modulus), self.unsignedInteger(exponent))
        return self.sequence(self.sequence(self.rsaEncryptionOID, self.null), self.bitString(rsaPublicKey))
    }
}

extension Array where Element == UInt8 {
    /// Overwrites every byte with zero (PIN copies, before they are released).
    mutating func zeroize() {
        self.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
    }
}
