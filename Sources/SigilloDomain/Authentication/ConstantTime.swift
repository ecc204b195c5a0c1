/// Comparisons whose running time does not depend on where the inputs differ.
enum ConstantTime {
    /// Whether two byte sequences are equal, looking at every byte of the longer one.
    ///
    /// The length itself is not secret (codes and hashes have public, fixed lengths), but the
    /// position of the first difference is.
    static func equals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
        let left = Array(lhs)
        let right = Array(rhs)
        var difference: UInt8 = left.count == right.count ? 0 : 1
        let count = max(left.count, right.count)
        for index in 0..<count {
            let a = index < left.count ? left[index] : 0
            let b = index < right.count ? right[index] : 0
            difference |= a ^ b
        }
        return difference == 0
    }

    /// Whether two strings have the same UTF-8 bytes, in constant time.
    static func equals(_ lhs: String, _ rhs: String) -> Bool {
        Self.equals(Array(lhs.utf8), Array(rhs.utf8))
    }
}
