import Foundation
import GRDB
import SigilloDomain

/// The CA's shared state: CRL numbers.
extension SQLiteStore: PKIStateStore {
    public func nextCRLNumber() async throws -> Int64 {
        try await self.write { db in
            try db.execute(sql: """
                INSERT INTO crl_state (id, last_number) VALUES (1, 1)
                ON CONFLICT (id) DO UPDATE SET last_number = last_number + 1
                """)
            return try Int64.fetchOne(db, sql: "SELECT last_number FROM crl_state WHERE id = 1") ?? 1
        }
    }
}
