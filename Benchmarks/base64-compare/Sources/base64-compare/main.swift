import ExtrasBase64
import Foundation

// Issue 16: the project's base64 (CSCProtocol.Base64Text: Foundation encode, byte-level lenient decode) against
// swift-extras-base64 1.2.0, on what signHash moves: 32-byte digests in, 72-byte ECDSA / 256-byte RSA signatures out.
func cpuNow() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(0), &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

@inline(never) func measure(_ name: String, _ iterations: Int, _ body: () -> Int) {
    var best = Double.infinity
    var sink = 0
    for _ in 0..<5 {
        let start = cpuNow()
        for _ in 0..<iterations { sink &+= body() }
        best = min(best, (cpuNow() - start) / Double(iterations))
    }
    print(String(format: "%-48@ %8.1f ns/op  (sink %d)", name as NSString, best * 1e9, sink & 1))
}

let digest = (0..<32).map { _ in UInt8.random(in: 0...255) }
let ecdsa = (0..<72).map { _ in UInt8.random(in: 0...255) }
let rsa = (0..<256).map { _ in UInt8.random(in: 0...255) }
let digestText = Base64Text.encode(digest)
let ecdsaText = Base64Text.encode(ecdsa)
precondition(Base64.encodeToString(bytes: digest) == digestText)
precondition(try! Base64.decode(string: digestText) == digest)
precondition(Base64Text.decodeASCII(digestText) == digest)

let n = 200_000
measure("encode 72 B, Foundation (Base64Text.encode)", n) { Base64Text.encode(ecdsa).utf8.count }
measure("encode 72 B, ExtrasBase64", n) { Base64.encodeToString(bytes: ecdsa).utf8.count }
measure("encode 256 B, Foundation (Base64Text.encode)", n) { Base64Text.encode(rsa).utf8.count }
measure("encode 256 B, ExtrasBase64", n) { Base64.encodeToString(bytes: rsa).utf8.count }
measure("decode 32 B digest, Base64Text.decodeASCII", n) { Base64Text.decodeASCII(digestText)!.count }
measure("decode 32 B digest, ExtrasBase64", n) { try! Base64.decode(string: digestText).count }
measure("decode 72 B, Base64Text.decodeASCII", n) { Base64Text.decodeASCII(ecdsaText)!.count }
measure("decode 72 B, ExtrasBase64", n) { try! Base64.decode(string: ecdsaText).count }
