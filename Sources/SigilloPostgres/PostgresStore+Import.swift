import Foundation
import PostgresNIO
import SigilloDomain

/// Copying an installation in (`sigillo admin migrate-store`): into an empty database only, in one transaction, each
/// value converted to its column's type, then the sequences and the audit chain's head set from what was copied.
extension PostgresStore {
    /// Imports `snapshot`; returns the rows copied per table.
    ///
    /// - Throws: `SigilloError(.conflict)` when the database already holds an installation; `.invalidRequest` for a
    ///   table or column this schema does not have.
    public func importSnapshot(_ snapshot: StoreSnapshot) async throws -> [String: Int] {
        try await self.transaction { connection in
            try await Self.execute(connection, "SELECT pg_advisory_xact_lock(\(Self.migrationLock))")
            for table in ["holders", "audit_events", "seed_vault"] {
                guard try await Self.first(connection, PostgresQuery(unsafeSQL: "SELECT 1 FROM \(table) LIMIT 1")) == nil else {
                    throw SigilloError(.conflict, "the PostgreSQL database already holds an installation (table \(table) is not empty)")
                }
            }
            var copied: [String: Int] = [:]
            for table in snapshot.tables {
                let types = try await Self.columnTypes(table.table, connection)
                for column in table.columns where types[column] == nil {
                    throw SigilloError(.invalidRequest, "column \(table.table).\(column) has no place in the PostgreSQL schema")
                }
                let list = table.columns.joined(separator: ", ")
                let marks = (1...max(1, table.columns.count)).map { "$\($0)" }.joined(separator: ", ")
                for row in table.rows {
                    var query = PostgresQuery(unsafeSQL: "INSERT INTO \(table.table) (\(list)) VALUES (\(marks))")
                    for (column, value) in zip(table.columns, row) {
                        try Self.bind(value, as: types[column] ?? "text", column: "\(table.table).\(column)", into: &query.binds)
                    }
                    try await Self.execute(connection, query)
                }
                copied[table.table] = table.rows.count
            }
            // The sequences continue after what was copied; the chain's head is the last event, its high-water mark SQLite's.
            try await Self.execute(connection, "SELECT setval(pg_get_serial_sequence('sms_codes', 'id'), COALESCE((SELECT MAX(id) FROM sms_codes), 0) + 1, false)")
            let head = try await Self.first(connection, "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            let lastSequence = try head.map { try $0.integer("seq") } ?? 0
            let hash = try head.map { try $0.text("hash") } ?? AuditChain.genesis
            let highWater = max(snapshot.auditHighWater ?? 0, lastSequence)
            try await Self.execute(connection, """
                INSERT INTO audit_state (id, last_seq, head_hash) VALUES (1, \(highWater), \(hash))
                ON CONFLICT (id) DO UPDATE SET last_seq = excluded.last_seq, head_hash = excluded.head_hash
                """)
            return copied
        }
    }

    /// Column name → PostgreSQL data type of `table`.
    static func columnTypes(_ table: String, _ connection: PostgresConnection) async throws -> [String: String] {
        var types: [String: String] = [:]
        for row in try await Self.rows(connection, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = \(table)") {
            types[try row.text("column_name")] = try row.text("data_type")
        }
        guard !types.isEmpty else { throw SigilloError(.invalidRequest, "table \(table) has no place in the PostgreSQL schema") }
        return types
    }

    /// Binds an SQLite value as the column's type (SQLite's 0/1 flags become booleans).
    static func bind(_ value: TableRows.Value, as type: String, column: String, into binds: inout PostgresBindings) throws {
        switch (value, type) {
        case (.null, "boolean"): try binds.append(Bool?.none)
        case (.null, "bigint"), (.null, "integer"): try binds.append(Int64?.none)
        case (.null, "bytea"): try binds.append(Data?.none)
        case (.null, _): try binds.append(String?.none)
        case (.integer(let number), "boolean"): try binds.append(number != 0)
        case (.integer(let number), "bigint"), (.integer(let number), "integer"): try binds.append(number)
        case (.text(let text), "text"): try binds.append(text)
        case (.blob(let bytes), "bytea"): try binds.append(Data(bytes))
        // SQLite may hold a digest typed as text, or a code as a blob: copied as the column wants it.
        case (.text(let text), "bytea"): try binds.append(Data(text.utf8))
        case (.blob(let bytes), "text"): try binds.append(String(decoding: bytes, as: UTF8.self))
        case (.integer(let number), "text"): try binds.append(String(number))
        default: throw SigilloError(.invalidRequest, "\(column): a \(value) cannot go into a \(type) column")
        }
    }
}
