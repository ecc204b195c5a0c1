import Foundation
import GRDB
import PKCS11
import SigilloDomain

/// Rows to models and back, shared by the aggregates.
extension SQLiteStore {
    static func insert(device: OTPDevice, sealedSecret: Data, db: Database) throws {
        try db.execute(
            sql: "INSERT INTO otp_devices (id, holder_id, kind, secret, algorithm, digits, period, counter, last_step, serial, active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            arguments: [device.id, device.holderID, device.kind.rawValue, sealedSecret, device.algorithm.rawValue, device.digits, device.period,
                        Int64(device.counter), Int64(device.lastStep), device.serial, device.active])
    }

    static func insert(credential: Credential, db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO credentials (id, holder_id, key_algorithm, token_key_id, certificate, serial_number, not_before, not_after, status, multisign,
                                         wrapped_key, public_key)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [credential.id, credential.holderID, credential.keyAlgorithm.rawValue, credential.tokenKeyID, Data(credential.certificateDER),
                        credential.serialNumber, Self.seconds(credential.notBefore), Self.seconds(credential.notAfter), credential.status.rawValue,
                        credential.multisign, credential.wrappedKey.map { Data($0) }, credential.publicKey.map { Data($0) }])
    }

    static func holder(_ row: Row) -> Holder {
        Holder(
            id: row["id"], username: row["username"], givenName: row["given_name"], surname: row["surname"], fiscalCode: row["fiscal_code"],
            email: row["email"], mobile: row["mobile"], state: HolderState(rawValue: row["state"]) ?? .created, passwordHash: row["password_hash"],
            createdAt: self.date(row["created_at"]))
    }

    static func credential(_ row: Row) -> Credential {
        Credential(
            id: row["id"], holderID: row["holder_id"], keyAlgorithm: KeyAlgorithm(rawValue: row["key_algorithm"]) ?? .ecP256, tokenKeyID: row["token_key_id"],
            certificateDER: [UInt8](row["certificate"] as Data), serialNumber: row["serial_number"], notBefore: self.date(row["not_before"]),
            notAfter: self.date(row["not_after"]), status: CredentialStatus(rawValue: row["status"]) ?? .suspended, multisign: row["multisign"],
            revocationReason: (row["revocation_reason"] as String?).flatMap(RevocationReason.init(rawValue:)),
            revokedAt: (row["revoked_at"] as Int64?).map(Self.date),
            suspendedAt: (row["suspended_at"] as Int64?).map(Self.date),
            lastReminderDays: row["last_reminder_days"],
            wrappedKey: (row["wrapped_key"] as Data?).map { [UInt8]($0) },
            publicKey: (row["public_key"] as Data?).map { [UInt8]($0) })
    }

    func device(_ row: Row) throws -> OTPDevice {
        OTPDevice(
            id: row["id"], holderID: row["holder_id"], kind: OTPKind(rawValue: row["kind"]) ?? .totp,
            secret: try self.open(row["secret"], "otp_devices/\(row["holder_id"] as String)"),
            algorithm: OTPAlgorithm(rawValue: row["algorithm"]) ?? .sha1, digits: row["digits"], period: row["period"],
            counter: UInt64(row["counter"] as Int64), lastStep: UInt64(row["last_step"] as Int64), serial: row["serial"], active: row["active"])
    }

    static func mail(_ row: Row) -> QueuedMail {
        QueuedMail(
            id: row["id"], kind: row["kind"], recipient: row["recipient"], subject: row["subject"], body: row["body"],
            createdAt: self.millisecondDate(row["created_at"]), status: QueuedMail.Status(rawValue: row["status"]) ?? .pending,
            attempts: row["attempts"], nextAttemptAt: self.millisecondDate(row["next_attempt_at"]), lastError: row["last_error"],
            finishedAt: (row["finished_at"] as Int64?).map(Self.millisecondDate))
    }
}

/// Times as stored: integer seconds (most tables) or milliseconds (SADs, mail outbox, throttles), rounded down.
extension SQLiteStore {
    static func seconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }
    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }
    static func date(_ seconds: Int64) -> Date { Date(timeIntervalSince1970: Double(seconds)) }
    static func millisecondDate(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}
