import Foundation
import PKCS11
import PostgresNIO
import SigilloDomain

/// Rows to models and back, shared by the aggregates; times as the SQLite store keeps them.
extension PostgresStore {
    static func insert(device: OTPDevice, sealedSecret: Data, _ connection: PostgresConnection) async throws {
        try await Self.execute(connection, """
            INSERT INTO otp_devices (id, holder_id, kind, secret, algorithm, digits, period, counter, last_step, serial, active)
            VALUES (\(device.id), \(device.holderID), \(device.kind.rawValue), \(sealedSecret), \(device.algorithm.rawValue), \(Int64(device.digits)),
                    \(Int64(device.period)), \(Int64(device.counter)), \(Int64(device.lastStep)), \(device.serial), \(device.active))
            """)
    }

    static func insert(credential: Credential, _ connection: PostgresConnection) async throws {
        try await Self.execute(connection, """
            INSERT INTO credentials (id, holder_id, key_algorithm, token_key_id, certificate, serial_number, not_before, not_after, status, multisign,
                                     wrapped_key, public_key)
            VALUES (\(credential.id), \(credential.holderID), \(credential.keyAlgorithm.rawValue), \(credential.tokenKeyID), \(Data(credential.certificateDER)),
                    \(credential.serialNumber), \(Self.seconds(credential.notBefore)), \(Self.seconds(credential.notAfter)), \(credential.status.rawValue),
                    \(Int64(credential.multisign)), \(credential.wrappedKey.map { Data($0) }), \(credential.publicKey.map { Data($0) }))
            """)
    }

    static func holder(_ row: PostgresRandomAccessRow) throws -> Holder {
        Holder(
            id: try row.text("id"), username: try row.optionalText("username"), givenName: try row.text("given_name"), surname: try row.text("surname"),
            fiscalCode: try row.text("fiscal_code"), email: try row.text("email"), mobile: try row.text("mobile"),
            state: HolderState(rawValue: try row.text("state")) ?? .created, passwordHash: try row.optionalText("password_hash"),
            createdAt: Self.date(try row.integer("created_at")))
    }

    static func credential(_ row: PostgresRandomAccessRow) throws -> Credential {
        Credential(
            id: try row.text("id"), holderID: try row.text("holder_id"), keyAlgorithm: KeyAlgorithm(rawValue: try row.text("key_algorithm")) ?? .ecP256,
            tokenKeyID: try row.text("token_key_id"), certificateDER: try row.bytes("certificate"), serialNumber: try row.text("serial_number"),
            notBefore: Self.date(try row.integer("not_before")), notAfter: Self.date(try row.integer("not_after")),
            status: CredentialStatus(rawValue: try row.text("status")) ?? .suspended, multisign: Int(try row.integer("multisign")),
            revocationReason: try row.optionalText("revocation_reason").flatMap(RevocationReason.init(rawValue:)),
            revokedAt: try row.optionalInteger("revoked_at").map(Self.date),
            suspendedAt: try row.optionalInteger("suspended_at").map(Self.date),
            lastReminderDays: try row.optionalInteger("last_reminder_days").map(Int.init),
            wrappedKey: try row.optionalData("wrapped_key").map { [UInt8]($0) },
            publicKey: try row.optionalData("public_key").map { [UInt8]($0) })
    }

    func device(_ row: PostgresRandomAccessRow) throws -> OTPDevice {
        let holderID = try row.text("holder_id")
        return OTPDevice(
            id: try row.text("id"), holderID: holderID, kind: OTPKind(rawValue: try row.text("kind")) ?? .totp,
            secret: try self.open(try row.data("secret"), "otp_devices/\(holderID)"),
            algorithm: OTPAlgorithm(rawValue: try row.text("algorithm")) ?? .sha1, digits: Int(try row.integer("digits")), period: Int(try row.integer("period")),
            counter: UInt64(try row.integer("counter")), lastStep: UInt64(try row.integer("last_step")), serial: try row.optionalText("serial"),
            active: try row["active"].decode(Bool.self))
    }

    static func mail(_ row: PostgresRandomAccessRow) throws -> QueuedMail {
        QueuedMail(
            id: try row.text("id"), kind: try row.text("kind"), recipient: try row.text("recipient"), subject: try row.text("subject"), body: try row.text("body"),
            createdAt: Self.millisecondDate(try row.integer("created_at")), status: QueuedMail.Status(rawValue: try row.text("status")) ?? .pending,
            attempts: Int(try row.integer("attempts")), nextAttemptAt: Self.millisecondDate(try row.integer("next_attempt_at")),
            lastError: try row.optionalText("last_error"), finishedAt: try row.optionalInteger("finished_at").map(Self.millisecondDate))
    }

    static func auditRecord(_ row: PostgresRandomAccessRow) throws -> AuditRecord {
        AuditRecord(
            sequence: try row.integer("seq"), time: Self.date(try row.integer("time")),
            event: AuditEvent(actor: try row.text("actor"), action: try row.text("action"), target: try row.text("target"), outcome: try row.text("outcome"),
                              details: try row.text("details")),
            previousHash: try row.text("prev_hash"), hash: try row.text("hash"))
    }
}

/// Times as stored: integer seconds (most tables) or milliseconds (SADs, mail outbox, throttles), rounded down.
extension PostgresStore {
    static func seconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }
    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }
    static func date(_ seconds: Int64) -> Date { Date(timeIntervalSince1970: Double(seconds)) }
    static func millisecondDate(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}

/// Typed column reads by name.
extension PostgresRandomAccessRow {
    func text(_ column: String) throws -> String { try self[column].decode(String.self) }
    func optionalText(_ column: String) throws -> String? { try self[column].decode(String?.self) }
    func integer(_ column: String) throws -> Int64 { try self[column].decode(Int64.self) }
    func optionalInteger(_ column: String) throws -> Int64? { try self[column].decode(Int64?.self) }
    func data(_ column: String) throws -> Data { try self[column].decode(Data.self) }
    func optionalData(_ column: String) throws -> Data? { try self[column].decode(Data?.self) }
    func bytes(_ column: String) throws -> [UInt8] { [UInt8](try self.data(column)) }
}
