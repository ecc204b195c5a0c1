import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A swift-log handler that writes one JSON object per line to standard error, for log collectors:
///
/// ```json
/// {"time":"2026-11-30T23:05:48.123Z","level":"info","label":"sigillo","message":"token open","metadata":{"sessions":"4"}}
/// ```
///
/// `time` is UTC with milliseconds; `metadata` merges the handler's, the metadata provider's and the call's (the call
/// wins), nested lists and dictionaries as JSON arrays and objects. A line is written with one `write(2)`, so lines from
/// concurrent loggers never interleave.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let output: @Sendable (String) -> Void

    /// - Parameters:
    ///   - label: the logger's label (`sigillo`, `Sigillo`, a library's).
    ///   - metadataProvider: extra metadata for every line.
    ///   - output: where each line goes (with its newline); standard error unless given.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil, output: (@Sendable (String) -> Void)? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.output = output ?? JSONLogHandler.standardError
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
                    file: String, function: String, line: UInt) {
        var merged = self.metadata
        if let provided = self.metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit { merged.merge(explicit) { _, new in new } }
        self.output(Self.line(time: Date(), level: level, label: self.label, message: message.description, metadata: merged))
    }

    /// The JSON line (ending in a newline) for one log event; keys in this order: time, level, label, message, metadata.
    public static func line(time: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var text = "{\"time\":"
        Self.append(string: Self.timestamp(time), to: &text)
        text += ",\"level\":"
        Self.append(string: level.rawValue, to: &text)
        text += ",\"label\":"
        Self.append(string: label, to: &text)
        text += ",\"message\":"
        Self.append(string: message, to: &text)
        text += ",\"metadata\":"
        Self.append(value: .dictionary(metadata), to: &text)
        text += "}\n"
        return text
    }

    /// `2026-11-30T23:05:48.123Z`.
    static func timestamp(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        let milliseconds = min(999, Int((interval - interval.rounded(.down)) * 1000))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = milliseconds < 10 ? "00\(milliseconds)" : milliseconds < 100 ? "0\(milliseconds)" : "\(milliseconds)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(millis)Z"
    }

    private static func append(value: Logger.Metadata.Value, to text: inout String) {
        switch value {
        case .string(let string):
            Self.append(string: string, to: &text)
        case .stringConvertible(let convertible):
            Self.append(string: convertible.description, to: &text)
        case .array(let values):
            text += "["
            for (index, element) in values.enumerated() {
                if index > 0 { text += "," }
                Self.append(value: element, to: &text)
            }
            text += "]"
        case .dictionary(let dictionary):
            text += "{"
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { text += "," }
                Self.append(string: key, to: &text)
                text += ":"
                Self.append(value: dictionary[key]!, to: &text)
            }
            text += "}"
        }
    }

    /// A JSON string literal (RFC 8259 §7): quotes, backslashes and control characters escaped.
    private static func append(string: String, to text: inout String) {
        text += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }

    /// One `write(2)` of the whole line on descriptor 2 (looping only on a short write).
    private static let standardError: @Sendable (String) -> Void = { line in
        let bytes = Array(line.utf8)
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}

/// How `sigillo serve` writes its log: `text` (swift-log's default, one readable line per event) or `json` (one JSON
/// object per line, `JSONLogHandler`).
public enum LogFormat: String, CaseIterable, Sendable {
    case text
    case json

    /// Makes every logger of the process (the server's and its libraries') write in this format. Call once, before
    /// any logger is made.
    public func bootstrap() {
        switch self {
        case .text: LoggingSystem.bootstrap(StreamLogHandler.standardError)
        case .json: LoggingSystem.bootstrap { label in JSONLogHandler(label: label) }
        }
    }
}
