/// A file to sign that cannot be read, or two files whose signatures would overwrite each other.
public struct FileError: Error, Hashable, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
