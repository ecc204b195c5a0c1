/// Who a holder certificate is issued to: a natural person identified by the Italian fiscal code.
public struct HolderIdentity: Hashable, Sendable, Codable {
    public var givenName: String
    public var surname: String
    /// The codice fiscale, 16 characters (upper-cased on validation).
    public var fiscalCode: String
    /// An e-mail address for the certificate's subjectAltName (`rfc822Name`), if any.
    public var email: String?

    public init(givenName: String, surname: String, fiscalCode: String, email: String? = nil) {
        self.givenName = givenName
        self.surname = surname
        self.fiscalCode = fiscalCode
        self.email = email
    }

    /// `TINIT-<fiscal code>`: the subject's `serialNumber` attribute (ETSI EN 319 412-1 §5.1.3 semantics).
    public var subjectSerialNumber: String { "TINIT-" + self.fiscalCode.uppercased() }

    /// `"<givenName> <surname>"`.
    public var commonName: String { "\(self.givenName) \(self.surname)" }

    /// Checks every field; returns the identity with the fiscal code upper-cased and names trimmed.
    ///
    /// - Throws: `SigilloError.invalidRequest` naming the bad field.
    public func validated() throws -> HolderIdentity {
        var identity = self
        identity.givenName = Self.trimmed(self.givenName)
        identity.surname = Self.trimmed(self.surname)
        identity.fiscalCode = Self.trimmed(self.fiscalCode).uppercased()
        for (field, value) in [("givenName", identity.givenName), ("surname", identity.surname)] {
            guard !value.isEmpty, value.count <= 64 else {
                throw SigilloError(.invalidRequest, "\(field) must be 1 to 64 characters")
            }
            guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw SigilloError(.invalidRequest, "\(field) must not contain control characters")
            }
        }
        guard Self.isValidFiscalCode(identity.fiscalCode) else {
            throw SigilloError(.invalidRequest, "fiscalCode is not a valid Italian codice fiscale")
        }
        if let email = self.email {
            let email = Self.trimmed(email)
            let parts = email.split(separator: "@", omittingEmptySubsequences: false)
            guard email.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
                  email.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F })
            else {
                throw SigilloError(.invalidRequest, "email is not a valid e-mail address")
            }
            identity.email = email
        }
        return identity
    }

    /// Whether `code` is a well-formed codice fiscale (16 characters, omocodia letters allowed) with a correct
    /// check character. `code` must be upper case.
    public static func isValidFiscalCode(_ code: String) -> Bool {
        let characters = Array(code.utf8)
        guard characters.count == 16 else { return false }
        let isLetter: (UInt8) -> Bool = { $0 >= 65 && $0 <= 90 }
        let isDigit: (UInt8) -> Bool = { $0 >= 48 && $0 <= 57 }
        // Positions that hold digits accept the omocodia substitutes L M N P Q R S T U V.
        let omocodia = Array("LMNPQRSTUV".utf8)
        for (index, character) in characters.enumerated() {
            switch index {
            case 0...5, 8, 11, 15:
                guard isLetter(character) else { return false }
            default:
                guard isDigit(character) || omocodia.contains(character) else { return false }
            }
        }
        guard Array("ABCDEHLMPRST".utf8).contains(characters[8]) else { return false }
        // Check character (DM 23/12/1976): odd positions (1-based) through a table, even ones by value.
        let oddValues = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]
        var sum = 0
        for (index, character) in characters.prefix(15).enumerated() {
            let value = isDigit(character) ? Int(character - 48) : Int(character - 65)
            sum += index % 2 == 0 ? oddValues[value] : value
        }
        return Int(characters[15] - 65) == sum % 26
    }

    private static func trimmed(_ value: String) -> String {
        var scalars = Substring(value)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
