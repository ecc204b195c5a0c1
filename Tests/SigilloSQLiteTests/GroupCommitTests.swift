import Foundation
import SigilloDomain
import SigilloSQLite
import Testing

@Suite("Group commit: concurrent hot-path writes share transactions")
struct GroupCommitTests {
    @Test("200 concurrent audit records: all stored, one intact chain", arguments: StoreKind.allCases)
    func concurrentAudit(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let before = try await store.auditRecords().count
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask { try await store.audit(AuditEvent(actor: "test", action: "test.concurrent", target: "\(index)", outcome: "ok"), at: Date()) }
            }
            try await group.waitForAll()
        }
        let records = try await store.auditRecords()
        #expect(records.count == before + 200)
        #expect(Set(records.filter { $0.event.action == "test.concurrent" }.map(\.event.target)).count == 200)
        #expect(AuditChain.firstBrokenRecord(records) == nil)
    }
}
