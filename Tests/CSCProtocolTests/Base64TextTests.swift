import Foundation
import CSCProtocol
import Testing

@Suite("Base64Text: the fast decoder agrees with Foundation")
struct Base64TextTests {
    @Test("random bytes, both alphabets, padded or not, blanks around")
    func agreesWithFoundation() {
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: .min ... .max) }
            let standard = Data(bytes).base64EncodedString()
            let url = standard.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            let unpadded = url.replacingOccurrences(of: "=", with: "")
            for text in [standard, url, unpadded, " \(standard)\n", "\t\(unpadded) "] where length > 0 {
                #expect(Base64Text.decodeASCII(text) == bytes, "\(text)")
            }
        }
    }

    @Test("anything else is left to the caller (nil)")
    func rejects() {
        for text in ["", "   ", "A", "AAAAA", "QUJD*", "QU JD", "QU=JD", "QUJD\u{00A0}", "é"] {
            #expect(Base64Text.decodeASCII(text) == nil, "\(text)")
        }
    }
}
