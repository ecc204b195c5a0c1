/// Decoding that accepts what real CSC services and clients send: numbers as strings, booleans as strings or
/// numbers, strings as numbers or booleans.
extension KeyedDecodingContainer {
    /// An integer sent as a JSON number or a string; nil when absent, null or of another JSON type.
    /// - Throws: `CSCRequestError` naming the field when it is a string that is not an integer.
    public func decodeLenientInt(forKey key: Key) throws -> Int? {
        if let number = try? self.decodeIfPresent(Int.self, forKey: key) { return number }
        if let text = try? self.decodeIfPresent(String.self, forKey: key) {
            guard let number = Int(text) else { throw CSCRequestError("Invalid parameter \(key.stringValue)") }
            return number
        }
        return nil
    }

    /// A boolean sent as a JSON boolean or the strings `true`/`false` (anything else is false); nil when absent.
    public func decodeLenientBool(forKey key: Key) -> Bool? {
        if let value = try? self.decodeIfPresent(Bool.self, forKey: key) { return value }
        if let text = try? self.decodeIfPresent(String.self, forKey: key) { return text.lowercased() == "true" }
        return nil
    }

    /// A string sent as a JSON string, boolean or number; nil when absent or anything else.
    public func decodeLenientString(forKey key: Key) -> String? {
        if let text = try? self.decodeIfPresent(String.self, forKey: key) { return text }
        if let flag = try? self.decodeIfPresent(Bool.self, forKey: key) { return flag ? "true" : "false" }
        if let number = try? self.decodeIfPresent(Int.self, forKey: key) { return String(number) }
        return nil
    }
}

/// A request field that is present but unusable, with the CSC `error_description` to answer (`invalid_request`).
public struct CSCRequestError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
