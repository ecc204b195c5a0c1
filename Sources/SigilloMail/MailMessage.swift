import SigilloDomain
import Foundation

/// A plain-text mail as RFC 5322 + MIME: UTF-8 body in quoted-printable, non-ASCII subject and display name as
/// RFC 2047 encoded-words, CRLF line endings, every line within 78 characters.
public struct MailMessage: Sendable, Equatable {
    public var from: MailAddress
    public var to: MailAddress
    public var subject: String
    public var body: String
    public var date: Date
    /// The Message-ID without angle brackets, e.g. `3F2A…@example.it`. Stable for a queued mail, so a mail sent twice
    /// (a crash between the relay's acceptance and the outbox update) is recognisable as one.
    public var messageID: String

    public init(from: MailAddress, to: MailAddress, subject: String, body: String, date: Date, messageID: String) {
        self.from = from
        self.to = to
        self.subject = subject
        self.body = body
        self.date = date
        self.messageID = messageID
    }

    /// The message as sent after DATA (before dot-stuffing): headers, a blank line, the encoded body, CRLF line ends.
    public func rendered() -> String {
        var lines = [
            "From: " + self.from.header(prefixLength: 6),
            "To: " + self.to.header(prefixLength: 4),
            "Subject: " + MailEncoding.headerText(MailEncoding.singleLine(self.subject), prefixLength: "Subject: ".count),
            "Date: " + MailEncoding.date(self.date),
            "Message-ID: <\(self.messageID)>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
            "",
        ]
        // The message ends with one line break whether or not the body does.
        var body = self.body.replacingOccurrences(of: "\r\n", with: "\n")
        if body.hasSuffix("\n") { body.removeLast() }
        lines.append(MailEncoding.quotedPrintable(body))
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}

/// A mailbox: an ASCII address (`local@domain`) and an optional display name (any Unicode).
public struct MailAddress: Sendable, Equatable, CustomStringConvertible {
    public let address: String
    public let name: String?

    /// - Throws: `SigilloError.invalidRequest` for anything that is not a plain `local@domain` address (no spaces,
    ///   control characters, angle brackets or non-ASCII: the relay is not asked for SMTPUTF8).
    public init(_ address: String, name: String? = nil) throws {
        guard Self.isValid(address) else { throw SigilloError(.invalidRequest, "'\(address.prefix(80))' is not a valid mail address") }
        self.address = address
        let trimmed = name.map(MailEncoding.singleLine)
        self.name = trimmed?.isEmpty == false ? trimmed : nil
    }

    public var description: String { self.address }

    /// `Name <address>` (name as encoded-words when not plain words), or the bare address; folded so that no line,
    /// with the `prefixLength` characters of the header name before it, passes 78 characters.
    func header(prefixLength: Int) -> String {
        guard let name = self.name else { return self.address }
        let atoms = name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == " ") }
        let words = atoms && prefixLength + name.count <= 78 ? [name] : MailEncoding.encodedWords(name, firstLineRoom: 78 - prefixLength)
        let lastLine = (words.count == 1 ? prefixLength : 1) + (words.last?.count ?? 0)
        let separator = lastLine + self.address.count + 3 > 78 ? "\r\n " : " "
        return words.joined(separator: "\r\n ") + separator + "<\(self.address)>"
    }

    /// `local@domain`: printable ASCII without specials that would break a header or an SMTP command, one `@`,
    /// a dotted domain, at most 254 characters.
    static func isValid(_ address: String) -> Bool {
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard address.utf8.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64 else { return false }
        let forbidden = Set("<>()[]\\,;:\"@ ".unicodeScalars)
        let localOK = parts[0].unicodeScalars.allSatisfy { $0.value > 32 && $0.value < 127 && !forbidden.contains($0) }
        let labels = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        let domainOK = labels.count >= 2 && labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
                && label.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-") }
        }
        return localOK && domainOK && !parts[0].hasPrefix(".") && !parts[0].hasSuffix(".") && !parts[0].contains("..")
    }
}

/// The encodings of RFC 2045 (quoted-printable), RFC 2047 (encoded-words) and RFC 5322 (dates).
enum MailEncoding {
    /// Quoted-printable UTF-8 (RFC 2045 §6.7): lines of at most 76 characters with soft breaks, CRLF hard breaks, trailing
    /// white space encoded. Any line ending (`\n`, `\r\n`, `\r`) in `text` becomes CRLF.
    static func quotedPrintable(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var output: [String] = []
        for line in self.lines(text) {
            var encoded: [UInt8] = []
            var length = 0
            let bytes = Array(line.utf8)
            for (index, byte) in bytes.enumerated() {
                let last = index == bytes.count - 1
                let literal = (byte >= 33 && byte <= 126 && byte != 61) || ((byte == 32 || byte == 9) && !last)
                let piece: [UInt8] = literal ? [byte] : [61, hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
                // Room for the piece plus a soft break "=" (unless this is the line's last piece).
                if length + piece.count > (last ? 76 : 75) {
                    encoded.append(contentsOf: Array("=\r\n".utf8))
                    length = 0
                }
                encoded.append(contentsOf: piece)
                length += piece.count
            }
            output.append(String(decoding: encoded, as: UTF8.self))
        }
        return output.joined(separator: "\r\n")
    }

    /// The lines of `text`, for any mix of line endings.
    static func lines(_ text: String) -> [String] {
        text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// Header text on one line: control characters (CR and LF included) become spaces, runs of space collapse.
    static func singleLine(_ text: String) -> String {
        let cleaned = String(String.UnicodeScalarView(text.unicodeScalars.map { CharacterSet.controlCharacters.contains($0) ? " " : $0 }))
        return cleaned.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }

    /// Unstructured header text: as is when printable ASCII that fits, else UTF-8 encoded-words folded onto
    /// continuation lines.
    static func headerText(_ text: String, prefixLength: Int) -> String {
        if text.unicodeScalars.allSatisfy({ $0.value >= 32 && $0.value < 127 }) && !text.contains("=?") && prefixLength + text.utf8.count <= 78 {
            return text
        }
        return self.encodedWords(text, firstLineRoom: 78 - prefixLength).joined(separator: "\r\n ")
    }

    /// RFC 2047 `=?UTF-8?B?…?=` words of at most 75 characters, never splitting a character's bytes across words.
    static func encodedWords(_ text: String, firstLineRoom: Int) -> [String] {
        // 12 characters of `=?UTF-8?B??=`; base64 of n bytes is 4·⌈n/3⌉ characters.
        func maxBytes(_ room: Int) -> Int { max(3, (min(room, 75) - 12) / 4 * 3) }
        var words: [String] = []
        var chunk: [UInt8] = []
        var limit = maxBytes(firstLineRoom)
        for scalar in text.unicodeScalars {
            let bytes = Array(String(scalar).utf8)
            if !chunk.isEmpty && chunk.count + bytes.count > limit {
                words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=")
                chunk = []
                limit = maxBytes(75)
            }
            chunk.append(contentsOf: bytes)
        }
        if !chunk.isEmpty || words.isEmpty { words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=") }
        return words
    }

    /// RFC 5322 date-time in UTC: `Mon, 23 Nov 2026 15:13:06 +0000`.
    static func date(_ date: Date) -> String {
        DateText.utc(date, format: "EEE, dd MMM yyyy HH:mm:ss '+0000'")
    }

    /// The DATA payload: `rendered` with every line starting with "." doubled (RFC 5321 §4.5.2) and the final "." line.
    static func dotStuffed(_ rendered: String) -> String {
        var lines = self.lines(rendered)
        if lines.last == "" { lines.removeLast() }
        return lines.map { $0.hasPrefix(".") ? "." + $0 : $0 }.joined(separator: "\r\n") + "\r\n.\r\n"
    }
}
