import Foundation
import PKCS11
import SigilloDomain
import SigilloSQLite
import SigilloTestSupport
import Testing

extension StoreContractTests {
    // MARK: ThrottleStore

    @Test("ThrottleStore: limit 5, 20 concurrent callers: exactly 5 admitted, again once the window moved on", arguments: StoreKind.allCases)
    func throttleAdmitsLimit(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let key = "sms:\(UUID().uuidString)"
        let admitted = try await concurrently(20) { _ in try await store.admit(throttle: key, now: now, window: 60, limit: 5, count: 1) }
        #expect(admitted.filter { $0 }.count == 5)
        #expect(try await store.admit(throttle: key, now: now.addingTimeInterval(30), window: 60, limit: 5, count: 1) == false)
        #expect(try await store.admit(throttle: "other:\(key)", now: now.addingTimeInterval(30), window: 60, limit: 5, count: 1))
        let later = now.addingTimeInterval(61)
        #expect(try await store.admit(throttle: key, now: later, window: 60, limit: 5, count: 1))

        // Several events at once: all counted, or (over the limit) none.
        #expect(try await store.admit(throttle: key, now: later, window: 60, limit: 5, count: 3))
        #expect(try await store.admit(throttle: key, now: later, window: 60, limit: 5, count: 2) == false)
        #expect(try await store.admit(throttle: key, now: later, window: 60, limit: 5, count: 1))
        #expect(try await store.admit(throttle: key, now: later, window: 60, limit: 5, count: 1) == false)
    }

    // MARK: AccessTokenStore and PasswordResetStore

    @Test("AccessTokenStore: tokens resolve to their holder until revoked, one or all of a holder's", arguments: StoreKind.allCases)
    func accessTokens(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let expiry = fixture.now.addingTimeInterval(3600)
        let holder = try await fixture.newHolder()
        let other = try await fixture.newHolder()
        let (one, two, theirs) = (randomBytes(32), randomBytes(32), randomBytes(32))
        try await store.createAccessToken(tokenHash: one, holderID: holder.id, expiresAt: expiry)
        try await store.createAccessToken(tokenHash: two, holderID: holder.id, expiresAt: expiry)
        try await store.createAccessToken(tokenHash: theirs, holderID: other.id, expiresAt: expiry)
        let found = try #require(try await store.accessToken(tokenHash: one))
        #expect(found.holderID == holder.id && found.expiresAt == expiry)
        #expect(try await store.accessToken(tokenHash: randomBytes(32)) == nil)
        try await store.revokeAccessToken(tokenHash: one)
        #expect(try await store.accessToken(tokenHash: one) == nil)
        #expect(try await store.accessToken(tokenHash: two)?.holderID == holder.id)
        try await store.revokeAccessTokens(holderID: holder.id)
        #expect(try await store.accessToken(tokenHash: two) == nil)
        #expect(try await store.accessToken(tokenHash: theirs)?.holderID == other.id)
    }

    @Test("PasswordResetStore: a reset completes once and ends sessions, SADs, failures and the other links", arguments: StoreKind.allCases)
    func passwordResetOnce(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let (holder, _, credential) = try await fixture.activeHolder()
        let sad = try await fixture.newSAD(credential)
        let session = randomBytes(32)
        try await store.createAccessToken(tokenHash: session, holderID: holder.id, expiresAt: now.addingTimeInterval(3600))
        try await store.recordWrongAnswer(holderID: holder.id, secret: .password)
        let (link, otherLink) = (randomBytes(32), randomBytes(32))
        try await store.createPasswordReset(tokenHash: link, holderID: holder.id, createdAt: now, expiresAt: now.addingTimeInterval(3600))
        try await store.createPasswordReset(tokenHash: otherLink, holderID: holder.id, createdAt: now, expiresAt: now.addingTimeInterval(3600))
        let stored = try #require(try await store.passwordReset(tokenHash: link))
        #expect(stored.holderID == holder.id && stored.expiresAt == now.addingTimeInterval(3600) && stored.usedAt == nil)

        let results = try await concurrently(20) { index in try await store.completePasswordReset(tokenHash: link, passwordHash: "new-\(index)", now: now) }
        #expect(results.compactMap { $0 } == [holder.id])
        let passwordHash = try #require(try await store.holder(id: holder.id)?.passwordHash)
        #expect(passwordHash.hasPrefix("new-"))
        #expect(try await store.passwordReset(tokenHash: link)?.usedAt == now)
        #expect(try await store.accessToken(tokenHash: session) == nil)
        #expect(try await store.sad(idHash: sad.idHash) == nil)
        #expect(try await store.secretFailures(holderID: holder.id).password == 0)
        #expect(try await store.completePasswordReset(tokenHash: otherLink, passwordHash: "other", now: now) == nil)
        #expect(try await store.passwordReset(tokenHash: otherLink)?.usedAt != nil)
        #expect(try await store.holder(id: holder.id)?.passwordHash == passwordHash)

        let expiring = randomBytes(32)
        try await store.createPasswordReset(tokenHash: expiring, holderID: holder.id, createdAt: now, expiresAt: now.addingTimeInterval(60))
        #expect(try await store.completePasswordReset(tokenHash: expiring, passwordHash: "late", now: now.addingTimeInterval(60)) == nil)
        #expect(try await store.completePasswordReset(tokenHash: randomBytes(32), passwordHash: "unknown", now: now) == nil)
        #expect(try await store.holder(id: holder.id)?.passwordHash == passwordHash)
    }

    // MARK: MailOutboxStore

    @Test("MailOutboxStore: two owners claiming concurrently never get the same mail", arguments: StoreKind.allCases)
    func mailClaimsNeverShared(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        for index in 0..<30 {
            try await store.enqueueMail(QueuedMail(kind: "test", recipient: "r\(index)@example.it", subject: "s", body: "b", createdAt: now.addingTimeInterval(Double(index))))
        }
        let future = QueuedMail(kind: "test", recipient: "later@example.it", subject: "s", body: "b", createdAt: now, nextAttemptAt: now.addingTimeInterval(3600))
        try await store.enqueueMail(future)
        #expect(try await store.nextMailDue() == now)

        let claims = try await concurrently(20) { index in
            let owner = index % 2 == 0 ? "A" : "B"
            let mails = try await store.claimDueMails(now: now.addingTimeInterval(30), owner: owner, leaseUntil: now.addingTimeInterval(600), limit: 4)
            return mails.map { (owner: owner, id: $0.id) }
        }.flatMap { $0 }
        #expect(claims.count == 30)
        #expect(Set(claims.map(\.id)).count == 30)
        #expect(!claims.map(\.id).contains(future.id))
        #expect(try await store.mailCounts() == [.sending: 30, .pending: 1])
        let mails = try await store.mails()
        #expect(mails.count == 31)
        for mail in mails where mail.id != future.id {
            #expect(mail.status == .sending && mail.attempts == 1)
        }
        #expect(try await store.claimDueMails(now: now.addingTimeInterval(30), owner: "C", leaseUntil: now.addingTimeInterval(600), limit: 100).isEmpty)
        // Whoever holds a mail may finish it; the other owner may not.
        for claim in claims.prefix(6) {
            let stranger = claim.owner == "A" ? "B" : "A"
            #expect(try await store.markMailSent(id: claim.id, owner: stranger, at: now) == false)
            #expect(try await store.markMailSent(id: claim.id, owner: claim.owner, at: now))
        }
        #expect(try await store.mailCounts() == [.sending: 24, .pending: 1, .sent: 6])
    }

    @Test("MailOutboxStore: a lost claim cannot mark sent, retry or failed; retry and failure as promised", arguments: StoreKind.allCases)
    func mailLostClaim(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let mail = QueuedMail(kind: "test", recipient: "a@example.it", subject: "s", body: "b", createdAt: now)
        try await store.enqueueMail(mail)
        #expect(try await store.claimDueMails(now: now, owner: "A", leaseUntil: now.addingTimeInterval(60), limit: 10).map(\.id) == [mail.id])
        #expect(try await store.nextMailDue() == now.addingTimeInterval(60))
        #expect(try await store.claimDueMails(now: now.addingTimeInterval(59), owner: "B", leaseUntil: now.addingTimeInterval(120), limit: 10).isEmpty)
        // A's lease ran out: B takes the mail over, and A lost it.
        let taken = try await store.claimDueMails(now: now.addingTimeInterval(60), owner: "B", leaseUntil: now.addingTimeInterval(120), limit: 10)
        #expect(taken.map(\.id) == [mail.id] && taken.first?.attempts == 2)
        #expect(try await store.markMailSent(id: mail.id, owner: "A", at: now) == false)
        #expect(try await store.markMailRetry(id: mail.id, owner: "A", nextAttempt: now, error: "lost") == false)
        #expect(try await store.markMailFailed(id: mail.id, owner: "A", at: now, error: "lost") == false)
        #expect(try await store.mails().first?.status == .sending)

        // B gives it back for later.
        #expect(try await store.markMailRetry(id: mail.id, owner: "B", nextAttempt: now.addingTimeInterval(300), error: "451 try later"))
        let retried = try #require(try await store.mails().first)
        #expect(retried.status == .pending && retried.lastError == "451 try later" && retried.nextAttemptAt == now.addingTimeInterval(300))
        #expect(try await store.nextMailDue() == now.addingTimeInterval(300))
        #expect(try await store.markMailSent(id: mail.id, owner: "B", at: now) == false)
        #expect(try await store.claimDueMails(now: now.addingTimeInterval(299), owner: "A", leaseUntil: now.addingTimeInterval(900), limit: 10).isEmpty)
        #expect(try await store.claimDueMails(now: now.addingTimeInterval(300), owner: "A", leaseUntil: now.addingTimeInterval(900), limit: 10).count == 1)
        #expect(try await store.markMailFailed(id: mail.id, owner: "A", at: now.addingTimeInterval(301), error: "550 no such user"))
        let failed = try #require(try await store.mails().first)
        #expect(failed.status == .failed && failed.lastError == "550 no such user" && failed.finishedAt == now.addingTimeInterval(301) && failed.attempts == 3)
        #expect(try await store.nextMailDue() == nil)
        #expect(try await store.claimDueMails(now: now.addingTimeInterval(10_000), owner: "A", leaseUntil: now.addingTimeInterval(20_000), limit: 10).isEmpty)

        let sent = QueuedMail(kind: "test", recipient: "b@example.it", subject: "s", body: "b", createdAt: now.addingTimeInterval(1))
        try await store.enqueueMail(sent)
        #expect(try await store.claimDueMails(now: now.addingTimeInterval(1), owner: "A", leaseUntil: now.addingTimeInterval(60), limit: 10).map(\.id) == [sent.id])
        #expect(try await store.markMailSent(id: sent.id, owner: "A", at: now.addingTimeInterval(2)))
        #expect(try await store.markMailSent(id: sent.id, owner: "A", at: now.addingTimeInterval(3)) == false)
        #expect(try await store.mails().map(\.status) == [.failed, .sent])
        #expect(try await store.mailCounts() == [.failed: 1, .sent: 1])
    }
}
