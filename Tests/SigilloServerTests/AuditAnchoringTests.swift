import Crypto
import Foundation
import GRDB
import PKCS11
import SigilloDomain
import SigilloSQLite
import SigilloTestSupport
import Testing

/// Issue 11, item 12: every refusal at signHash audited; the audit log anchored in the token, so that rewriting the
/// database file (chain and `sqlite_sequence` together) or cutting its tail shows.
@Suite("Audit: signHash refusals, checkpoints and the token's anchor")
struct AuditAnchoringTests {
    // MARK: signHash refusals

    @Test("each refused signHash leaves exactly one refused record saying why; a signature exactly one ok record")
    func signHashRefusals() async throws {
        let fixture = try TestToken()
        let clock = TestClock()
        try await LiveServer.with(fixture, clock: clock.serviceClock) { server in
            var account = try await server.activate()
            let other = try await server.activate(name: "Anna")
            let id = account.credential.id
            let token = try #require(try await server.post("/csc/v1/auth/login", basic: (account.username, account.password)).json["access_token"] as? String)
            let digest = Array(SHA256.hash(data: Data("contract".utf8)))
            let ecdsaSHA256 = "1.2.840.10045.4.3.2"
            func authorize(_ hashes: [[UInt8]]) async throws -> String {
                let answer = try await server.post("/csc/v1/credentials/authorize", [
                    "credentialID": id, "numSignatures": hashes.count, "hash": hashes.map(b64), "PIN": account.password, "OTP": account.nextOTP(),
                ], bearer: token)
                return try #require(answer.json["SAD"] as? String, "\(answer.json)")
            }
            /// Sends one signHash and returns its status and the records it added.
            func sign(_ body: [String: Any]) async throws -> (status: Int, records: [AuditRecord]) {
                let before = try await server.services.store.auditHead()?.sequence ?? 0
                let answer = try await server.post("/csc/v1/signatures/signHash", body, bearer: token)
                let added = try await server.services.store.auditRecords().filter { $0.sequence > before }
                return (answer.status, added)
            }
            func expectRefused(_ body: [String: Any], status: Int, because reason: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let (answered, records) = try await sign(body)
                #expect(answered == status, sourceLocation: sourceLocation)
                #expect(records.count == 1, "\(records.map(\.event))", sourceLocation: sourceLocation)
                let record = try #require(records.first, sourceLocation: sourceLocation)
                #expect(record.event.actor == account.holder.id && record.event.action == "signature.sign" && record.event.outcome == "refused",
                        sourceLocation: sourceLocation)
                #expect(record.event.details.contains(reason), "\(record.event.details)", sourceLocation: sourceLocation)
            }

            let sad = try await authorize([digest])
            try await expectRefused(["credentialID": id, "SAD": "no-such-sad", "hash": [b64(digest)], "signAlgo": ecdsaSHA256], status: 400, because: "not valid")
            // The SAD on another holder's credential (foreign credential).
            try await expectRefused(["credentialID": other.credential.id, "SAD": sad, "hash": [b64(digest)], "signAlgo": ecdsaSHA256], status: 400, because: "not valid")
            try await expectRefused(["credentialID": id, "SAD": sad, "hash": [b64(Array(SHA256.hash(data: Data("other".utf8))))], "signAlgo": ecdsaSHA256],
                                    status: 400, because: "not authorized")
            let sha384 = Array(SHA384.hash(data: Data("contract".utf8)))
            try await expectRefused(["credentialID": id, "SAD": sad, "hash": [b64(sha384)], "hashAlgo": "2.16.840.1.101.3.4.2.2", "signAlgo": "1.2.840.10045.4.3.3"],
                                    status: 400, because: "sha256")
            try await expectRefused(["credentialID": id, "SAD": sad, "hash": [b64(digest)], "hashAlgo": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.113549.1.1.11"],
                                    status: 400, because: "does not match")

            // The signature: one ok record, no refused one.
            let (status, records) = try await sign(["credentialID": id, "SAD": sad, "hash": [b64(digest)], "signAlgo": ecdsaSHA256])
            #expect(status == 200)
            #expect(records.map(\.event.outcome) == ["ok"] && records.first?.event.details == "signatures=1", "\(records.map(\.event))")
            try await expectRefused(["credentialID": id, "SAD": sad, "hash": [b64(digest)], "signAlgo": ecdsaSHA256], status: 400, because: "no signatures left")

            let expiring = try await authorize([digest])
            clock.advance(server.services.domain.settings.sadLifetime + 1)
            try await expectRefused(["credentialID": id, "SAD": expiring, "hash": [b64(digest)], "signAlgo": ecdsaSHA256], status: 400, because: "expired")

            // A suspension kills the SAD issued before it.
            let suspended = try await authorize([digest])
            _ = try await server.services.domain.lifecycle.suspend(credentialID: id, actor: "operator:test")
            try await expectRefused(["credentialID": id, "SAD": suspended, "hash": [b64(digest)], "signAlgo": ecdsaSHA256], status: 400, because: "not valid")
        }
    }

    // MARK: Checkpoints against an attacker with the database file

    /// What an attacker with the file and this code can do: edit rows with `edit`, recompute every hash from the first
    /// row on, and set `sqlite_sequence` to the last row, so chain, sequence numbers and high-water mark all agree.
    /// `edit` gets each row's event and the recomputed hashes of the rows before it.
    static func rewrite(_ path: String, edit: @escaping @Sendable (Int64, inout AuditEvent, [Int64: String]) -> Void) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            var previous = AuditChain.genesis
            var hashes: [Int64: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM audit_events ORDER BY seq") {
                let sequence: Int64 = row["seq"]
                var event = AuditEvent(actor: row["actor"], action: row["action"], target: row["target"], outcome: row["outcome"], details: row["details"])
                edit(sequence, &event, hashes)
                let hash = AuditChain.hash(previous: previous, time: row["time"], event: event)
                try db.execute(sql: "UPDATE audit_events SET actor = ?, action = ?, target = ?, outcome = ?, details = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                               arguments: [event.actor, event.action, event.target, event.outcome, event.details, previous, hash, sequence])
                hashes[sequence] = hash
                previous = hash
            }
            try db.execute(sql: "UPDATE sqlite_sequence SET seq = (SELECT MAX(seq) FROM audit_events) WHERE name = 'audit_events'")
        }
    }

    /// Three holders created, a checkpoint through the admin API, two more holders: returns the checkpoint record.
    static func checkpointedLog(_ admin: AdminServer) async throws -> AuditRecord {
        for _ in 0..<3 { #expect(try await admin.request(.POST, "holders", AdminTests.holderBody()).status == 201) }
        let answer = try await admin.request(.POST, "audit/checkpoint")
        #expect(answer.status == 200, "\(answer.json)")
        let sequence = try #require(answer.json["seq"] as? Int)
        for _ in 0..<2 { #expect(try await admin.request(.POST, "holders", AdminTests.holderBody()).status == 201) }
        let record = try #require(try await admin.server.services.store.auditRecord(sequence: Int64(sequence)))
        #expect(record.event.action == AuditCheckpoint.action && record.event.actor.contains("CN=operator"))
        return record
    }

    @Test("without a checkpoint a rewritten chain with sqlite_sequence adjusted passes; the chain alone cannot tell")
    func rewriteWithoutCheckpoint() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            for _ in 0..<3 { #expect(try await admin.request(.POST, "holders", AdminTests.holderBody()).status == 201) }
            try Self.rewrite(admin.databasePath) { sequence, event, _ in if sequence == 2 { event.details = "state=recognized" } }
            let verify = try await admin.request(.GET, "audit/verify")
            #expect(verify.json["intact"] as? Bool == true, "\(verify.json)")
            #expect(verify.json["checkpoints"] as? Int == 0 && verify.json["anchoredThrough"] == nil)
        }
    }

    @Test("a row rewritten before a checkpoint, every later hash recomputed and sqlite_sequence fixed: the signed hash no longer matches")
    func rewriteBeforeCheckpoint() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            let checkpoint = try await Self.checkpointedLog(admin)
            let intact = try await admin.request(.GET, "audit/verify")
            #expect(intact.json["intact"] as? Bool == true, "\(intact.json)")
            #expect(intact.json["checkpoints"] as? Int == 1 && intact.json["anchoredThrough"] as? Int == Int(checkpoint.sequence))
            #expect(intact.json["unanchored"] as? Int == 2)

            try Self.rewrite(admin.databasePath) { sequence, event, _ in if sequence == 2 { event.actor = "someone else" } }
            let verify = try await admin.request(.GET, "audit/verify")
            #expect(verify.json["intact"] as? Bool == false)
            let signed = try #require(AuditCheckpoint(details: checkpoint.event.details)).sequence
            #expect(verify.json["firstBrokenSequence"] as? Int == Int(signed))
            #expect((verify.json["problem"] as? String)?.contains("rewritten") == true, "\(verify.json)")
        }
    }

    @Test("the same rewrite with the checkpoint's hash replaced too: its signature no longer verifies")
    func rewriteCheckpointToo() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            let checkpoint = try await Self.checkpointedLog(admin)
            try Self.rewrite(admin.databasePath) { sequence, event, hashes in
                if sequence == 2 { event.actor = "someone else" }
                if sequence == checkpoint.sequence, var signed = AuditCheckpoint(details: event.details), let hash = hashes[signed.sequence] {
                    signed.hash = hash
                    event.details = signed.details
                }
            }
            let verify = try await admin.request(.GET, "audit/verify")
            #expect(verify.json["intact"] as? Bool == false)
            #expect(verify.json["firstBrokenSequence"] as? Int == Int(checkpoint.sequence))
            #expect((verify.json["problem"] as? String)?.contains("not signed by the token's audit key") == true, "\(verify.json)")
        }
    }

    @Test("the whole log emptied and sqlite_sequence dropped: the token's anchor still points at its record")
    func emptiedLog() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            let checkpoint = try await Self.checkpointedLog(admin)
            try admin.tamper("DELETE FROM audit_events; DELETE FROM sqlite_sequence WHERE name = 'audit_events';")
            let verify = try await admin.request(.GET, "audit/verify")
            #expect(verify.json["intact"] as? Bool == false, "\(verify.json)")
            #expect((verify.json["problem"] as? String)?.contains("record \(checkpoint.sequence), is missing") == true, "\(verify.json)")
        }
    }

    @Test("the tail cut from the signed record on (checkpoint included) with sqlite_sequence fixed: the token's anchor points at a missing record; the anchor does not move until an operator resets it")
    func truncatedTail() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            let checkpoint = try await Self.checkpointedLog(admin)
            let signed = try #require(AuditCheckpoint(details: checkpoint.event.details)).sequence
            try admin.tamper("DELETE FROM audit_events WHERE seq >= \(signed); UPDATE sqlite_sequence SET seq = \(signed - 1) WHERE name = 'audit_events';")
            let verify = try await admin.request(.GET, "audit/verify")
            #expect(verify.json["intact"] as? Bool == false)
            #expect(verify.json["firstBrokenSequence"] as? Int == Int(checkpoint.sequence))
            #expect((verify.json["problem"] as? String)?.contains("record \(checkpoint.sequence), is missing") == true, "\(verify.json)")

            // The server goes on writing: a new checkpoint is signed, but the anchor stays on the missing record.
            let checkpoints = admin.server.services.domain.auditTrail.checkpoints
            await #expect(throws: SigilloError.self) { try await checkpoints.checkpoint(reason: "interval") }
            #expect(try await checkpoints.anchor() == AuditAnchor(sequence: checkpoint.sequence, hash: checkpoint.hash))
            #expect(try await admin.request(.GET, "audit/verify").json["intact"] as? Bool == false)

            // An operator who understood the loss (a restored backup) moves it; the log keeps what it pointed at.
            let reset = try await admin.request(.POST, "audit/anchor/reset")
            #expect(reset.status == 200, "\(reset.json)")
            #expect((reset.json["previous"] as? [String: Any])?["seq"] as? Int == Int(checkpoint.sequence))
            let after = try await admin.request(.GET, "audit/verify")
            #expect(after.json["intact"] as? Bool == true, "\(after.json)")
            let records = try await admin.server.services.store.auditRecords()
            #expect(records.contains { $0.event.action == "audit.anchor.reset" && $0.event.actor.contains("CN=operator") && $0.event.details.contains("was seq=\(checkpoint.sequence)") })
        }
    }
}
