import Foundation
import GRDB
import SigilloDomain

/// Holders: identity, state, contact details and the user (emergency) code.
extension SQLiteStore: HolderStore {
    public func createHolder(_ holder: Holder) async throws {
        try await self.write { db in
            try db.execute(
                sql: """
                    INSERT INTO holders (id, username, given_name, surname, fiscal_code, email, mobile, state, password_hash, created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [holder.id, holder.username, holder.givenName, holder.surname, holder.fiscalCode, holder.email, holder.mobile,
                            holder.state.rawValue, holder.passwordHash, Self.seconds(holder.createdAt)])
        }
    }

    public func holder(id: String) async throws -> Holder? {
        try await self.database.read { db in try Row.fetchOne(db, sql: "SELECT * FROM holders WHERE id = ?", arguments: [id]).map(Self.holder) }
    }

    public func holder(username: String) async throws -> Holder? {
        try await self.database.read { db in try Row.fetchOne(db, sql: "SELECT * FROM holders WHERE username = ?", arguments: [username]).map(Self.holder) }
    }

    public func holders() async throws -> [Holder] {
        try await self.database.read { db in try Row.fetchAll(db, sql: "SELECT * FROM holders ORDER BY created_at, id").map(Self.holder) }
    }

    public func setHolderState(id: String, state: HolderState) async throws {
        try await self.write { db in
            try db.execute(sql: "UPDATE holders SET state = ? WHERE id = ?", arguments: [state.rawValue, id])
            guard db.changesCount == 1 else { throw SigilloError(.notFound, "no holder \(id)") }
        }
    }

    public func setHolderMobile(id: String, mobile: String) async throws {
        try await self.write { db in
            try db.execute(sql: "UPDATE holders SET mobile = ? WHERE id = ?", arguments: [mobile, id])
            guard db.changesCount == 1 else { throw SigilloError(.notFound, "no holder \(id)") }
        }
    }

    public func setUserCodeHash(holderID: String, hash: String) async throws {
        try await self.write { db in
            try db.execute(sql: "UPDATE holders SET user_code_hash = ? WHERE id = ?", arguments: [hash, holderID])
            try Self.clearAttempts(holderID: holderID, secret: .userCode, db: db)
        }
    }

    public func userCode(holderID: String) async throws -> String? {
        try await self.database.read { db in
            try String.fetchOne(db, sql: "SELECT user_code_hash FROM holders WHERE id = ?", arguments: [holderID])
        }
    }

    public func transitionHolder(id: String, from: Set<HolderState>, to: HolderState) async throws -> Bool {
        try await self.write { db in
            let states = from.map(\.rawValue)
            let marks = Array(repeating: "?", count: states.count).joined(separator: ", ")
            try db.execute(sql: "UPDATE holders SET state = ? WHERE id = ? AND state IN (\(marks))",
                           arguments: StatementArguments([to.rawValue, id] + states))
            return db.changesCount == 1
        }
    }

    /// The holder who has this address now: a holder closed for good (`revoked`) gave it up (migration v11), so the
    /// open one, at most one (a unique index over open holders).
    public func holder(email: String) async throws -> Holder? {
        try await self.database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM holders WHERE email = ? AND state != 'revoked'", arguments: [email]).map(Self.holder)
        }
    }

    /// The holder who has this number now (see `holder(email:)`).
    public func holder(mobile: String) async throws -> Holder? {
        try await self.database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM holders WHERE mobile = ? AND state != 'revoked'", arguments: [mobile]).map(Self.holder)
        }
    }
}
