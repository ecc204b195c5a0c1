import Foundation
import HTTPTypes

/// The username and password of an HTTP Basic `Authorization` header (CSC `auth/login`), if there is one.
struct BasicCredentials {
    let username: String
    let password: String

    init?(_ headers: HTTPFields) {
        guard let header = headers[.authorization], header.lowercased().hasPrefix("basic "),
              let decoded = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        self.username = String(text[..<colon])
        self.password = String(text[text.index(after: colon)...])
    }
}
