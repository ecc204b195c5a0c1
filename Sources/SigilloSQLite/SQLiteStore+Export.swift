import Foundation
import GRDB
import SigilloDomain

/// The whole installation, read in one transaction (`sigillo admin migrate-store`).
extension SQLiteStore {
    public func snapshot() async throws -> StoreSnapshot {
        try await self.database.read { db in
            var tables: [TableRows] = []
            for table in TableRows.tables {
                let order = table == "secret_attempts" ? "holder_id, secret" : "rowid"
                let rows = try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY \(order)")
                let columns = try db.columns(in: table).map(\.name)
                tables.append(TableRows(table: table, columns: columns, rows: rows.map { row in
                    columns.map { column -> TableRows.Value in
                        switch (row[column] as DatabaseValue).storage {
                        case .null: return .null
                        case .int64(let value): return .integer(value)
                        case .double(let value): return .real(value)
                        case .string(let value): return .text(value)
                        case .blob(let value): return .blob([UInt8](value))
                        }
                    }
                }))
            }
            let highWater = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'")
            return StoreSnapshot(tables: tables, auditHighWater: highWater)
        }
    }
}
