import CSCProtocol
import Foundation
import Hummingbird
import NIOCore

/// The JSON answers of both listeners: Codable values (keys sorted, slashes unescaped), never cached.
enum JSONResponse {
    /// `value` as JSON with `status`.
    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        Self.response(try self.encode(value), status: status)
    }

    /// `value` as JSON: keys sorted, slashes unescaped.
    static func encode(_ value: some Encodable) throws -> ByteBuffer {
        ByteBuffer(bytes: try self.encoder().encode(value))
    }

    /// The encoder of every JSON answer: keys sorted, slashes unescaped.
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// The `signatures/signHash` answer, `{"signatures":["…",…]}`, written directly: it is the hot path, and base64
    /// text never needs escaping. The same bytes as `make(CSCSignHashResponse(…))`.
    static func signatures(_ signatures: [[UInt8]]) -> Response {
        Self.response(self.signaturesJSON(signatures), status: .ok)
    }

    /// The bytes of the `signatures/signHash` answer.
    static func signaturesJSON(_ signatures: [[UInt8]]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(24 + signatures.reduce(0) { $0 + ($1.count + 2) / 3 * 4 + 3 })
        buffer.writeString(#"{"signatures":["#)
        for (index, signature) in signatures.enumerated() {
            buffer.writeString(index == 0 ? "\"" : ",\"")
            buffer.writeString(Base64Text.encode(signature))
            buffer.writeString("\"")
        }
        buffer.writeString("]}")
        return buffer
    }

    private static func response(_ body: ByteBuffer, status: HTTPResponse.Status) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }
}
