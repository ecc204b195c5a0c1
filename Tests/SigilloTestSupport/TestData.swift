import Foundation
/// Test identities.
public enum TestData {
    /// A valid codice fiscale (correct check character) with a random body.
    public static func fiscalCode() -> String {
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        var code = (0..<6).map { _ in String(letters.randomElement()!) }.joined()
        code += String(format: "%02d", Int.random(in: 0...99)) + String(Array("ABCDEHLMPRST").randomElement()!) + String(format: "%02d", Int.random(in: 1...28))
        code += String(letters.randomElement()!) + String(format: "%03d", Int.random(in: 0...999))
        // Check character (DM 23/12/1976): odd positions through a table, even ones by value.
        let odd = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]
        let sum = code.utf8.enumerated().reduce(0) { sum, item in
            let value = item.element >= 65 ? Int(item.element - 65) : Int(item.element - 48)
            return sum + (item.offset % 2 == 0 ? odd[value] : value)
        }
        return code + String(UnicodeScalar(UInt8(65 + sum % 26)))
    }
}

/// The raw bytes of an SQLite database: its file and its write-ahead log, where recent writes sit until a checkpoint.
/// For checks that a secret is nowhere in what the store keeps.
public func databaseBytes(_ path: String) throws -> Data {
    var bytes = Data()
    for file in [path, path + "-wal"] where FileManager.default.fileExists(atPath: file) {
        bytes += try Data(contentsOf: URL(fileURLWithPath: file))
    }
    return bytes
}
