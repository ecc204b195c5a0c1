import Foundation

/// Dates written for people and protocols (mail headers and texts), always in UTC.
public enum DateText {
    /// `date` in UTC with a fixed (POSIX locale) `format`.
    public static func utc(_ date: Date, format: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = format
        return formatter.string(from: date)
    }
}
