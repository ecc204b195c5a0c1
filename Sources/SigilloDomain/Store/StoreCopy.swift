import Foundation

/// One table's rows as a store holds them, for copying an installation from one database to another
/// (`sigillo admin migrate-store`): every value as stored, sealed seeds and digests untouched.
public struct TableRows: Sendable {
    public enum Value: Sendable, Equatable {
        case null
        case integer(Int64)
        case real(Double)
        case text(String)
        case blob([UInt8])
    }

    public let table: String
    public let columns: [String]
    public var rows: [[Value]]

    public init(table: String, columns: [String], rows: [[Value]]) {
        self.table = table
        self.columns = columns
        self.rows = rows
    }

    /// The tables of an installation, parents before the rows that refer to them.
    public static let tables = [
        "holders", "invitations", "otp_devices", "credentials", "sms_codes", "sads", "access_tokens", "password_resets", "hardware_tokens",
        "device_rebinds", "device_rebind_requests", "mail_outbox", "seed_vault", "throttle_events", "mobile_changes", "secret_attempts", "crl_state",
        "oauth_clients", "oauth_grants",
        "audit_events",
    ]
}

/// A whole installation's data, as read in one consistent snapshot.
public struct StoreSnapshot: Sendable {
    public var tables: [TableRows]
    /// The highest audit sequence ever handed out (a chain ending below it lost its last rows).
    public var auditHighWater: Int64?

    public init(tables: [TableRows], auditHighWater: Int64?) {
        self.tables = tables
        self.auditHighWater = auditHighWater
    }
}
