import Foundation
import Logging
import SigilloDomain
import SigilloMail
import SigilloSQLite
import SigilloTestSupport
import Testing

@Suite("Mail: RFC 5322 messages")
struct MailMessageTests {
    @Test("Addresses that could break a header or an SMTP command are refused")
    func addresses() throws {
        for bad in ["", "mario", "mario@", "@example.it", "mario@example", "mario rossi@example.it", "mario@example.it\r\nRCPT TO:<x@y.it>",
                    "mario@exa_mple.it", "<mario@example.it>", "màrio@example.it", "mario..rossi@example.it", "mario@-example.it"] {
            #expect(throws: SigilloError.self, "\(bad)") { try MailAddress(bad) }
        }
        for good in ["mario.rossi@example.it", "m+tag@mail.example.co.uk", "a_b-c@x1.it"] {
            #expect(throws: Never.self) { try MailAddress(good) }
        }
        // A display name cannot smuggle a header in.
        let address = try MailAddress("a@example.it", name: "Evil\r\nBcc: x@y.it")
        #expect(address.name == "Evil Bcc: x@y.it")
    }

    @Test("Lines stay within 78 characters, end in CRLF, and a line of one dot is stuffed")
    func rendering() throws {
        let body = "Perché sì.\n.\n.nascosto\n" + String(repeating: "àèìòù ", count: 40) + "   \nfine = uguale\t"
        let message = MailMessage(from: try MailAddress("a@example.it", name: "Città"), to: try MailAddress("b@example.it"),
                                  subject: String(repeating: "Attivazione è pronta ", count: 6), body: body, date: Date(timeIntervalSince1970: 0),
                                  messageID: "x@example.it")
        let rendered = message.rendered()
        let lines = rendered.components(separatedBy: "\r\n")
        #expect(lines.allSatisfy { $0.utf8.count <= 78 }, "\(lines.map(\.utf8.count))")
        #expect(!rendered.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(rendered.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"))
        #expect(rendered.contains("Subject: =?UTF-8?B?"))
        #expect(rendered.contains("From: =?UTF-8?B?"))
        #expect(rendered.contains("Perch=C3=A9 s=C3=AC.\r\n.\r\n.nascosto\r\n"))
        // Trailing white space is encoded, so no relay strips it.
        #expect(rendered.contains("=20\r\nfine =3D uguale=09\r\n"))
    }
}

@Suite("Mail templates")
struct MailTemplateTests {
    @Test("Each template says what it is for, in Italian and English, with its parameters")
    func templates() {
        let date = Date(timeIntervalSince1970: 1_790_000_000)
        let cases: [(MailContent, String, [String])] = [
            (MailTemplates.invitation(name: "Mario", activationURL: "https://x.it/a?code=C1", expiresAt: date), "invitation",
             ["https://x.it/a?code=C1", "21/09/2026 14:13 UTC", "scade", "expires"]),
            (MailTemplates.expiryReminder(name: "Mario", serialNumber: "0A1B", expiresAt: date), "expiry-reminder",
             ["0A1B", "21/09/2026 14:13 UTC", "contatti il suo operatore", "contact your operator"]),
            (MailTemplates.usernameReminder(name: "Mario", username: "mario.r"), "username-reminder", ["è: mario.r", "is: mario.r"]),
            (MailTemplates.passwordReset(name: "Mario", resetURL: "https://x.it/r?code=R9", expiresAt: date), "password-reset",
             ["https://x.it/r?code=R9", "una sola volta", "usable once"]),
            (MailTemplates.revocationNotice(name: "Mario", serialNumber: "0A1B", reason: .keyCompromise, revokedAt: date), "revocation-notice",
             ["0A1B", "compromissione della chiave", "key compromise", "21/09/2026 14:13 UTC"]),
        ]
        for (content, kind, expected) in cases {
            #expect(content.kind == kind)
            #expect(content.body.hasPrefix("Gentile Mario,") && content.body.contains("Dear Mario,") && content.subject.contains(" / "))
            for text in expected { #expect(content.body.contains(text), "\(kind): \(text)") }
        }
    }
}

@Suite("Mail through a real SMTP server (aiosmtpd on loopback)")
struct MailDeliveryTests {
    static let recipient = "mario.rossi@example.it"

    /// Every template plus a message exercising the encodings (dots, long accented lines, trailing spaces).
    static func allKinds() -> [MailContent] {
        let date = MailFixture.t0.addingTimeInterval(365 * 86_400)
        return [
            MailTemplates.invitation(name: "Mario Rossi", activationURL: "https://firma.example.it/attiva?code=ABCD-EFGH", expiresAt: date),
            MailTemplates.expiryReminder(name: "Mario Rossi", serialNumber: "1A2B3C", expiresAt: date, renewalURL: "https://firma.example.it/rinnovo"),
            MailTemplates.usernameReminder(name: "Mario Rossi", username: "mario"),
            MailTemplates.passwordReset(name: "Mario Rossi", resetURL: "https://firma.example.it/reset?code=XYZ", expiresAt: date),
            MailTemplates.revocationNotice(name: "Niccolò Làzzari", serialNumber: "1A2B3C", reason: .keyCompromise, revokedAt: date),
            MailContent(kind: "message", subject: "Perché l'attivazione è così lunga? Una riga d'oggetto molto lunga, con accenti: àèéìòù",
                        body: ".\n..due punti\n.nascosto\n" + String(repeating: "Città più è ", count: 30) + "  \nfine\t\n\nultima riga"),
        ]
    }

    /// Checks the messages the sink received against what was queued, as Python's email parser decodes them.
    static func expectDelivered(_ contents: [MailContent], fixture: MailFixture, sink: SMTPSink, tls: Bool) async throws {
        let received = try sink.messages()
        try #require(received.count == contents.count)
        let mails = try await fixture.store.mails()
        for (index, content) in contents.enumerated() {
            let message = received[index]
            let mail = mails[index]
            #expect(mail.status == .sent && mail.attempts == 1 && mail.kind == content.kind && mail.body.isEmpty)
            #expect(message.header("Subject") == content.subject)
            #expect(message.text == content.body.replacingOccurrences(of: "\r\n", with: "\n") + (content.body.hasSuffix("\n") ? "" : "\n"))
            #expect(message.fromAddress == MailFixture.from.address && message.fromName == MailFixture.from.name)
            #expect(message.mailFrom == MailFixture.from.address && message.rcptTos == [Self.recipient] && message.header("To") == Self.recipient)
            #expect(message.header("Message-ID") == "<\(mail.id)@sigillo.example.it>")
            #expect(message.dateIso == "2026-09-21T14:13:20+00:00")
            #expect(message.header("MIME-Version") == "1.0")
            #expect(message.contentType == "text/plain" && message.charset == "utf-8")
            #expect(message.header("Content-Transfer-Encoding") == "quoted-printable")
            #expect(message.defects.isEmpty, "\(message.defects)")
            #expect(message.longestLine <= 78 && !message.bareLf)
            #expect(message.tls == tls)
        }
        let audit = try await fixture.store.auditRecords()
        #expect(audit.filter { $0.event.action == "mail.send" && $0.event.outcome == "ok" }.count == contents.count)
    }

    @Test("Every kind of mail, in plain text to a loopback relay: headers and UTF-8 body decode exactly")
    func plain() async throws {
        let folder = try TestHSM.makeTemporaryDirectory()
        let sink = try await SMTPSink.start(folder: folder)
        defer { Task { await sink.stop() } }
        let fixture = try MailFixture(smtp: sink.configuration(tls: .none))
        let contents = Self.allKinds()
        for content in contents { try await fixture.mailer.send(content, to: Self.recipient) }
        let report = try await fixture.dispatcher.deliverDue(now: MailFixture.t0)
        #expect(report.sent == contents.count && report.retried == 0 && report.failed == 0)
        try await Self.expectDelivered(contents, fixture: fixture, sink: sink, tls: false)
        // Nothing is due any more, nothing is sent again.
        #expect(try await fixture.dispatcher.deliverDue(now: MailFixture.t0.addingTimeInterval(86_400)) == .init())
        #expect(try await fixture.store.nextMailDue() == nil)
        #expect(try sink.messages().count == contents.count)
        await sink.stop()
    }

    @Test("STARTTLS verified against the CA file, then AUTH", arguments: [("required", [String]()), ("starttls", ["--exclude-mechanism", "PLAIN"])])
    func startTLS(mode: String, extra: [String]) async throws {
        let folder = try TestHSM.makeTemporaryDirectory()
        let certificates = try await RelayCertificates.make(in: folder)
        let sink = try await SMTPSink.start(folder: folder.appendingPathComponent("mail"), certificates: certificates,
                                            options: ["--require-starttls", "--auth-user", "sigillo"] + extra, password: "s3gr€to")
        defer { Task { await sink.stop() } }
        let credentials = SMTPConfiguration.Credentials(username: "sigillo", password: "s3gr€to")
        let fixture = try MailFixture(smtp: sink.configuration(tls: SMTPConfiguration.TLSMode(rawValue: mode)!, caFile: certificates.caFile, credentials: credentials))
        let contents = Self.allKinds()
        for content in contents { try await fixture.mailer.send(content, to: Self.recipient) }
        let report = try await fixture.dispatcher.deliverDue(now: MailFixture.t0)
        let errors = try await fixture.store.mails().compactMap(\.lastError)
        #expect(report.sent == contents.count, "\(errors)")
        try await Self.expectDelivered(contents, fixture: fixture, sink: sink, tls: true)
        let received = try sink.messages()
        #expect(received.allSatisfy { $0.authUser == "sigillo" && $0.authMechanism == (extra.isEmpty ? "PLAIN" : "LOGIN") })
        #expect(!(credentials.description.contains("s3gr")))
        await sink.stop()
    }

    @Test("A relay whose certificate does not verify, or that offers no STARTTLS when TLS is required, gets nothing")
    func tlsRefused() async throws {
        let folder = try TestHSM.makeTemporaryDirectory()
        let certificates = try await RelayCertificates.make(in: folder)
        let other = try await RelayCertificates.make(in: try TestHSM.makeTemporaryDirectory())
        let tlsSink = try await SMTPSink.start(folder: folder.appendingPathComponent("tls"), certificates: certificates)
        let plainSink = try await SMTPSink.start(folder: folder.appendingPathComponent("plain"))
        defer { Task { await tlsSink.stop(); await plainSink.stop() } }
        for configuration in [tlsSink.configuration(tls: .starttls, caFile: other.caFile), plainSink.configuration(tls: .required)] {
            let fixture = try MailFixture(smtp: configuration)
            try await fixture.mailer.send(Self.allKinds()[0], to: Self.recipient)
            let report = try await fixture.dispatcher.deliverDue(now: MailFixture.t0)
            #expect(report.retried == 1)
            let mail = try await fixture.mail()
            #expect(mail.status == .pending && mail.lastError?.hasPrefix("tls") == true, "\(mail.lastError ?? "")")
        }
        #expect(try tlsSink.messages().isEmpty && plainSink.messages().isEmpty)
        await tlsSink.stop()
        await plainSink.stop()
    }

    @Test("Relay down: the mail stays pending, retried after 30 s, 1, 2, 4… minutes up to 1 h; relay up: delivered exactly once")
    func relayDown() async throws {
        let folder = try TestHSM.makeTemporaryDirectory()
        // The relay's port, refusing connections until the sink starts on it.
        let down = try ReservedPorts()
        let fixture = try MailFixture(smtp: SMTPSink.configuration(port: down.base, tls: .none))
        let id = try await fixture.mailer.enqueue(Self.allKinds()[3], to: Self.recipient)
        var now = MailFixture.t0
        var delays: [TimeInterval] = []
        for _ in 0..<9 {
            let report = try await fixture.dispatcher.deliverDue(now: now)
            #expect(report.retried == 1)
            let mail = try await fixture.mail(id)
            #expect(mail.status == .pending && mail.lastError?.hasPrefix("connectionFailed") == true, "\(mail.lastError ?? "")")
            delays.append(mail.nextAttemptAt.timeIntervalSince(now))
            // Not due before its time.
            #expect(try await fixture.dispatcher.deliverDue(now: mail.nextAttemptAt.addingTimeInterval(-1)) == .init())
            #expect(try await fixture.store.nextMailDue() == mail.nextAttemptAt)
            now = mail.nextAttemptAt
        }
        #expect(delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600])
        #expect(try await fixture.mail(id).attempts == 9)

        down.release()
        let sink = try await SMTPSink.start(folder: folder, port: down.base)
        defer { Task { await sink.stop() } }
        #expect(try await fixture.dispatcher.deliverDue(now: now).sent == 1)
        #expect(try await fixture.dispatcher.deliverDue(now: now.addingTimeInterval(7200)) == .init())
        let received = try sink.messages()
        #expect(received.count == 1 && received.first?.header("Message-ID") == "<\(id)@sigillo.example.it>")
        let mail = try await fixture.mail(id)
        #expect(mail.status == .sent && mail.attempts == 10 && mail.finishedAt == now && mail.lastError == nil)
        await sink.stop()
    }

    @Test("A 5xx rejection fails the mail for good (audited, never retried); a 4xx one is retried; the others in the session go through")
    func rejections() async throws {
        let folder = try TestHSM.makeTemporaryDirectory()
        let sink = try await SMTPSink.start(folder: folder, options: ["--reject-rcpt", "nobody", "--defer-rcpt", "busy"])
        defer { Task { await sink.stop() } }
        let fixture = try MailFixture(smtp: sink.configuration(tls: .none))
        let rejected = try await fixture.mailer.enqueue(Self.allKinds()[0], to: "nobody@example.it")
        let deferred = try await fixture.mailer.enqueue(Self.allKinds()[1], to: "busy@example.it")
        let accepted = try await fixture.mailer.enqueue(Self.allKinds()[2], to: Self.recipient)
        let report = try await fixture.dispatcher.deliverDue(now: MailFixture.t0)
        #expect(report.sent == 1 && report.retried == 1 && report.failed == 1)

        let failed = try await fixture.mail(rejected)
        #expect(failed.status == .failed && failed.finishedAt == MailFixture.t0 && failed.lastError?.contains("550") == true, "\(failed.lastError ?? "")")
        let waiting = try await fixture.mail(deferred)
        #expect(failed.body.isEmpty && waiting.body == Self.allKinds()[1].body)
        #expect(try await fixture.mail(deferred).status == .pending)
        #expect(try await fixture.mail(deferred).lastError?.contains("451") == true)
        #expect(try await fixture.mail(accepted).status == .sent)
        let audit = try await fixture.store.auditRecords()
        #expect(audit.contains { $0.event.action == "mail.send" && $0.event.target == rejected && $0.event.outcome == "failed" && $0.event.details.contains("550") })

        // A day later: the deferred mail is tried again (and deferred again), the failed one never.
        let later = try await fixture.dispatcher.deliverDue(now: MailFixture.t0.addingTimeInterval(86_400))
        #expect(later.retried == 1 && later.sent == 0 && later.failed == 0)
        #expect(try await fixture.mail(rejected).attempts == 1)
        #expect(try sink.messages().map(\.rcptTos) == [[Self.recipient]])
        await sink.stop()
    }

    @Test("A mail undeliverable for 3 days is given up and audited")
    func maximumAge() async throws {
        let down = try ReservedPorts()
        let fixture = try MailFixture(smtp: SMTPSink.configuration(port: down.base, tls: .none))
        let id = try await fixture.mailer.enqueue(Self.allKinds()[4], to: Self.recipient)
        // Tried 10 s before the limit: retried, due again 20 s after it, and then given up.
        #expect(try await fixture.dispatcher.deliverDue(now: MailFixture.t0.addingTimeInterval(3 * 86_400 - 10)).retried == 1)
        #expect(try await fixture.dispatcher.deliverDue(now: MailFixture.t0.addingTimeInterval(3 * 86_400 + 20)).failed == 1)
        let mail = try await fixture.mail(id)
        #expect(mail.status == .failed && mail.lastError?.hasPrefix("gave up after 2 attempts") == true)
        #expect(try await fixture.store.auditRecords().contains { $0.event.target == id && $0.event.outcome == "failed" })
    }

    @Test("A restart resumes the outbox: a new dispatcher on the same database delivers what the old one left, once")
    func restart() async throws {
        let folder = try TestHSM.makeTemporaryDirectory()
        let down = try ReservedPorts()
        let database = try TestHSM.makeTemporaryDirectory()
        // First run: relay down, the mail waits with its next attempt stored.
        let first = try MailFixture(smtp: SMTPSink.configuration(port: down.base, tls: .none), directory: database)
        let waiting = try await first.mailer.enqueue(Self.allKinds()[0], to: Self.recipient)
        try await first.dispatcher.deliverDue(now: MailFixture.t0)
        let next = try await first.mail(waiting).nextAttemptAt
        // A dispatcher that claimed a second mail and died before recording the outcome.
        let orphan = try await first.mailer.enqueue(Self.allKinds()[1], to: Self.recipient)
        let claimed = try await first.store.claimDueMails(now: MailFixture.t0, owner: "dead", leaseUntil: MailFixture.t0.addingTimeInterval(600), limit: 10)
        #expect(claimed.map(\.id) == [orphan])

        // Second run, relay up.
        down.release()
        let sink = try await SMTPSink.start(folder: folder.appendingPathComponent("mail"), port: down.base)
        defer { Task { await sink.stop() } }
        let second = try MailFixture(smtp: sink.configuration(tls: .none), directory: database)
        #expect(try await second.dispatcher.deliverDue(now: next.addingTimeInterval(-1)) == .init())
        #expect(try await second.dispatcher.deliverDue(now: next).sent == 1)
        #expect(try sink.messages().count == 1)
        // The orphan's claim runs out: delivered by the new dispatcher; the dead one's late update is refused.
        #expect(try await second.dispatcher.deliverDue(now: MailFixture.t0.addingTimeInterval(599)) == .init())
        #expect(try await second.dispatcher.deliverDue(now: MailFixture.t0.addingTimeInterval(600)).sent == 1)
        #expect(try await second.store.markMailSent(id: orphan, owner: "dead", at: MailFixture.t0) == false)
        #expect(try await second.store.markMailRetry(id: orphan, owner: "dead", nextAttempt: MailFixture.t0, error: "x") == false)
        #expect(try await second.store.mails().allSatisfy { $0.status == .sent })
        #expect(try await second.dispatcher.deliverDue(now: MailFixture.t0.addingTimeInterval(86_400)) == .init())
        #expect(try sink.messages().map { $0.header("Message-ID") } == ["<\(waiting)@sigillo.example.it>", "<\(orphan)@sigillo.example.it>"])
        await sink.stop()
    }

    @Test("Two dispatchers on one database never claim the same mail")
    func concurrentClaims() async throws {
        let fixture = try MailFixture(transport: MailFileTransport(file: try TestHSM.makeTemporaryDirectory().appendingPathComponent("mail.jsonl").path))
        for index in 0..<40 { try await fixture.mailer.send(to: "u\(index)@example.it", subject: "s", body: "b") }
        let claims = try await withThrowingTaskGroup(of: [String].self) { group in
            for owner in ["a", "b", "c", "d"] {
                group.addTask {
                    var ids: [String] = []
                    while true {
                        let batch = try await fixture.store.claimDueMails(now: MailFixture.t0, owner: owner, leaseUntil: MailFixture.t0.addingTimeInterval(60), limit: 3)
                        if batch.isEmpty { return ids }
                        ids += batch.map(\.id)
                    }
                }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(claims.count == 40 && Set(claims).count == 40)
    }

    @Test("The run loop, idle, delivers a mail as soon as the mailer queues it (woken, not polled), and stops on cancellation")
    func runLoop() async throws {
        let folder = try TestHSM.makeTemporaryDirectory()
        let sink = try await SMTPSink.start(folder: folder)
        defer { Task { await sink.stop() } }
        let store = try SQLiteStore(path: folder.appendingPathComponent("mail.sqlite").path, vault: nil)
        let observed = ObservedOutbox(store)
        var policy = MailDispatcher.Policy()
        policy.pollInterval = 3600
        let dispatcher = MailDispatcher(store: observed, transport: try SMTPClient(configuration: sink.configuration(tls: .none)), from: MailFixture.from,
                                        policy: policy, logger: Logger(label: "mail-test"))
        let running = Task { try await dispatcher.run() }
        // The mail is queued only once the dispatcher found nothing to do and went to sleep for its poll interval (an
        // hour): only the mailer's wake-up can deliver it before the test's overall limit.
        try await observed.idle.wait()
        try await OutboxMailer(store: store, dispatcher: dispatcher).send(MailTemplates.usernameReminder(name: "Mario", username: "mario"), to: Self.recipient)
        try await observed.sent.wait(upTo: .seconds(120))
        #expect(try sink.messages().count == 1)
        #expect(try await store.mails().first?.status == .sent)
        running.cancel()
        try await running.value
        #expect(try sink.messages().count == 1)
        await sink.stop()
    }

    @Test("Without a relay, the development transport writes each mail as a JSON line")
    func developmentFile() async throws {
        let file = try TestHSM.makeTemporaryDirectory().appendingPathComponent("mail.jsonl").path
        let fixture = try MailFixture(transport: MailFileTransport(file: file))
        let content = MailTemplates.passwordReset(name: "Mario", resetURL: "https://firma.example.it/reset?code=R1", expiresAt: MailFixture.t0)
        try await fixture.mailer.send(content, to: Self.recipient)
        #expect(try await fixture.dispatcher.deliverDue(now: MailFixture.t0).sent == 1)
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        try #require(lines.count == 1)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(json["to"] as? String == Self.recipient && json["subject"] as? String == content.subject && json["body"] as? String == content.body)
    }

    @Test("Awkward but valid replies: byte-by-byte multi-line greeting, bare LF, code-only lines, several replies in one write")
    func raggedRelay() async throws {
        let folder = try TestHSM.makeTemporaryDirectory()
        let relay = try await SMTPSink.misbehaving("ragged", folder: folder)
        defer { Task { await relay.stop() } }
        let client = try SMTPClient(configuration: relay.configuration(tls: .starttls))
        let message = MailMessage(from: MailFixture.from, to: try MailAddress(Self.recipient), subject: "Prova", body: "riga\n.punto\n.\nfine",
                                  date: MailFixture.t0, messageID: "ragged@sigillo.example.it")
        let results = await client.send([message, message])
        #expect(results.allSatisfy { (try? $0.get()) != nil }, "\(results)")
        let eml = try String(contentsOf: folder.appendingPathComponent("0002.eml"), encoding: .utf8)
        #expect(eml == message.rendered())
        await relay.stop()
    }

    @Test("A relay that never answers times out (transient); a reply forged into the STARTTLS handshake is refused")
    func hostileRelays() async throws {
        let folder = try TestHSM.makeTemporaryDirectory()
        let silent = try await SMTPSink.misbehaving("silent", folder: folder)
        let inject = try await SMTPSink.misbehaving("inject", folder: folder)
        defer { Task { await silent.stop(); await inject.stop() } }
        let message = MailMessage(from: MailFixture.from, to: try MailAddress(Self.recipient), subject: "x", body: "y", date: MailFixture.t0, messageID: "h@x.it")

        var configuration = silent.configuration(tls: .none)
        configuration.replyTimeout = .milliseconds(300)
        let timedOut = try await SMTPClient(configuration: configuration).send([message])
        #expect(throws: SMTPError.self) { try timedOut[0].get() }
        if case .failure(let error) = timedOut[0] { #expect(error.kind == .timeout && !error.isPermanent) }

        let certificates = try await RelayCertificates.make(in: folder)
        let injected = try await SMTPClient(configuration: inject.configuration(tls: .required, caFile: certificates.caFile)).send([message])
        if case .failure(let error) = injected[0] {
            #expect(error.kind == .protocolViolation && !error.isPermanent && error.message.contains("STARTTLS"), "\(error)")
        } else {
            Issue.record("a forged reply after STARTTLS was accepted")
        }
        await silent.stop()
        await inject.stop()
    }

    @Test("Invalid recipients are refused when queued, with a clear error")
    func invalidRecipient() async throws {
        let fixture = try MailFixture(transport: MailFileTransport(file: "/dev/null"))
        await #expect(throws: SigilloError.self) { try await fixture.mailer.send(to: "mario@example.it>\r\nDATA", subject: "x", body: "y") }
        #expect(try await fixture.store.mails().isEmpty)
    }
}

/// The outbox as the dispatcher sees it, telling the test when the dispatcher went idle (asked for the next mail due
/// and found none) and when a mail was marked sent.
final class ObservedOutbox: MailOutboxStore, AuditStore {
    let store: SQLiteStore
    let idle = TestEvent("the dispatcher going idle")
    let sent = TestEvent("a mail marked sent")

    init(_ store: SQLiteStore) {
        self.store = store
    }

    func nextMailDue() async throws -> Date? {
        let next = try await self.store.nextMailDue()
        if next == nil { self.idle.fire() }
        return next
    }

    func markMailSent(id: String, owner: String, at time: Date) async throws -> Bool {
        let marked = try await self.store.markMailSent(id: id, owner: owner, at: time)
        if marked { self.sent.fire() }
        return marked
    }

    func enqueueMail(_ mail: QueuedMail) async throws { try await self.store.enqueueMail(mail) }
    func claimDueMails(now: Date, owner: String, leaseUntil: Date, limit: Int) async throws -> [QueuedMail] {
        try await self.store.claimDueMails(now: now, owner: owner, leaseUntil: leaseUntil, limit: limit)
    }
    func markMailRetry(id: String, owner: String, nextAttempt: Date, error: String) async throws -> Bool {
        try await self.store.markMailRetry(id: id, owner: owner, nextAttempt: nextAttempt, error: error)
    }
    func markMailFailed(id: String, owner: String, at time: Date, error: String) async throws -> Bool {
        try await self.store.markMailFailed(id: id, owner: owner, at: time, error: error)
    }
    func mails() async throws -> [QueuedMail] { try await self.store.mails() }
    func mailCounts() async throws -> [QueuedMail.Status: Int] { try await self.store.mailCounts() }
    func audit(_ event: AuditEvent, at time: Date) async throws { try await self.store.audit(event, at: time) }
    func auditRecords() async throws -> [AuditRecord] { try await self.store.auditRecords() }
    func auditSequenceHighWater() async throws -> Int64? { try await self.store.auditSequenceHighWater() }
    func auditHead() async throws -> AuditRecord? { try await self.store.auditHead() }
    func auditRecord(sequence: Int64) async throws -> AuditRecord? { try await self.store.auditRecord(sequence: sequence) }
    func latestAuditCheckpoint() async throws -> AuditRecord? { try await self.store.latestAuditCheckpoint() }
}
