/// The rules a new password must follow.
///
/// Deliberately few (NIST SP 800-63B): a minimum length, not the username, not one repeated
/// character. No composition rules and no expiry.
public enum PasswordPolicy {
    /// Minimum length, in user-perceived characters (`Character`s, not bytes).
    public static let minimumLength = 10

    /// Checks a new password for `username`.
    ///
    /// - Throws: ``SigilloError`` with code ``SigilloError/Code/weakPassword`` and a message saying
    ///   which rule failed.
    public static func validate(password: String, username: String) throws(SigilloError) {
        guard password.count >= Self.minimumLength else {
            throw SigilloError(.weakPassword, "The password must be at least \(Self.minimumLength) characters long.")
        }
        guard password.lowercased() != username.lowercased() else {
            throw SigilloError(.weakPassword, "The password must not be the username.")
        }
        guard let first = password.first, !password.allSatisfy({ $0 == first }) else {
            throw SigilloError(.weakPassword, "The password must not repeat a single character.")
        }
    }
}
