#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import Foundation

/// Standard error and password prompts of the command-line client.
public enum Terminal {
    /// Writes to standard error.
    public static func error(_ text: String, newline: Bool = true) {
        FileHandle.standardError.write(Data((newline ? text + "\n" : text).utf8))
    }

    /// Reads a line from the terminal without echo.
    public static func secret(_ prompt: String) throws -> String {
        guard let pointer = getpass(prompt) else { throw TerminalError("cannot read from the terminal") }
        let value = String(cString: pointer)
        // getpass returns a static buffer: wipe it.
        memset(pointer, 0, strlen(pointer))
        guard !value.isEmpty else { throw TerminalError("nothing entered") }
        return value
    }
}

/// The terminal could not give what was asked (no terminal, nothing typed).
public struct TerminalError: Error, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
