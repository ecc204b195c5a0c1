import SigilloDomain
import Testing

@Suite("Hex: digests on the command line, token seeds")
struct HexTests {
    @Test("hex digits of either case, spaces and colons between them; nothing else")
    func parse() {
        #expect(Hex.bytes("00ff10") == [0x00, 0xFF, 0x10])
        #expect(Hex.bytes("00:FF:10") == [0x00, 0xFF, 0x10])
        #expect(Hex.bytes("abc") == nil)
        #expect(Hex.bytes("zz") == nil)
        #expect(Hex.bytes("") == nil)
    }
}
