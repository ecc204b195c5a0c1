/// Input a CMS signature cannot be built from: a certificate that does not parse, a digest of the wrong length,
/// a malformed signature value.
public struct CMSError: Error, Hashable, CustomStringConvertible, Sendable {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
