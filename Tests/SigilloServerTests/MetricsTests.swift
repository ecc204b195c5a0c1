import AsyncHTTPClient
@testable import SigilloDomain
import Crypto
import Foundation
import SigilloPKI
import SigilloServer
import SigilloTestSupport
import Testing

@Suite("Metrics: Prometheus text on the admin listener")
struct MetricsTests {
    @Test("GET /metrics (operators only): requests by listener, route and status with latency histograms, signatures by algorithm; the counters move")
    func scrape() async throws {
        let fixture = try TestToken()
        try await AdminServer.with(fixture) { admin in
            let server = admin.server
            func scrape() async throws -> String {
                let response = try await admin.client.execute(HTTPClientRequest(url: admin.baseURL + "/metrics"), timeout: .seconds(60))
                #expect(response.status.code == 200)
                #expect(response.headers["Content-Type"].first?.hasPrefix("text/plain; version=0.0.4") == true)
                return String(buffer: try await response.body.collect(upTo: 1 << 24))
            }
            let signHash = ["listener": "public", "method": "POST", "route": "/csc/v1/signatures/signHash", "status": "200"]
            let ecdsa = ["algorithm": "1.2.840.10045.4.3.2"]

            let before = try await scrape()
            #expect(Self.value(before, "sigillo_signatures_total", ecdsa) == nil)
            #expect(Self.value(before, "sigillo_http_requests_total", signHash) == nil)
            #expect(Self.value(before, "sigillo_crl_age_seconds", [:]) == nil)

            // A holder signs twice (one SAD for two hashes, two signHash calls of one hash); an unknown route is 404.
            var account = try await server.activate()
            let id = account.credential.id
            let token = try #require(try await server.post("/csc/v1/auth/login", basic: (account.username, account.password)).json["access_token"] as? String)
            let digests = ["contract", "annex"].map { Array(SHA256.hash(data: Data($0.utf8))) }
            let sad = try #require(try await server.post("/csc/v1/credentials/authorize", [
                "credentialID": id, "numSignatures": 2, "hash": digests.map(b64), "PIN": account.password, "OTP": account.nextOTP(),
            ], bearer: token).json["SAD"] as? String)
            for digest in digests {
                let signed = try await server.post("/csc/v1/signatures/signHash", [
                    "credentialID": id, "SAD": sad, "hash": [b64(digest)], "hashAlgo": "2.16.840.1.101.3.4.2.1", "signAlgo": ecdsa["algorithm"]!,
                ], bearer: token)
                #expect(signed.status == 200, "\(signed.json)")
            }
            #expect(try await server.post("/csc/v1/no-such-method", bearer: token).status == 404)
            // A CRL is built for a relying party: its age is measured at the next scrape (at least the minute its
            // thisUpdate is dated back).
            let crl = try await server.client.execute(HTTPClientRequest(url: server.baseURL + "/crl/ca.crl"), timeout: .seconds(60))
            #expect(crl.status.code == 200)
            // Refusals by reason: a wrong password on v2 (answered as invalid_authentication_data, counted as what it
            // was), a SAD used up, a malformed body.
            let wrong = try await server.post("/csc/v2/credentials/authorize", [
                "credentialID": id, "numSignatures": 1, "hash": [b64(digests[0])], "PIN": account.password + "x", "OTP": account.nextOTP(),
            ], bearer: token)
            #expect(wrong.status == 400 && wrong.error == "invalid_authentication_data", "\(wrong.json)")
            let spent = try await server.post("/csc/v1/signatures/signHash", [
                "credentialID": id, "SAD": sad, "hash": [b64(digests[0])], "hashAlgo": "2.16.840.1.101.3.4.2.1", "signAlgo": ecdsa["algorithm"]!,
            ], bearer: token)
            #expect(spent.status == 400, "\(spent.json)")
            #expect(try await server.post("/csc/v1/signatures/signHash", raw: "{", bearer: token).status == 400)

            let after = try await scrape()
            #expect(Self.value(after, "sigillo_signatures_total", ecdsa) == 2, "\(after)")
            // The holder's key is wrapped (the default): each signHash found it in a session's cache or unwrapped it.
            let unwrapped = ["hit", "unwrap"].compactMap { Self.value(after, "sigillo_unwrapped_key_cache_total", ["event": $0]) }
            #expect(unwrapped.count == 2 && unwrapped.reduce(0, +) >= 2, "\(after)")
            #expect(Self.value(after, "sigillo_http_requests_total", signHash) == 2)
            #expect(Self.value(after, "sigillo_http_requests_total", ["listener": "public", "route": "/csc/v1/credentials/authorize", "status": "200"]) == 1)
            #expect(Self.value(after, "sigillo_http_requests_total", ["listener": "public", "route": "NotFound", "status": "404"]) == 1)
            #expect(Self.value(after, "sigillo_refusals_total", ["method": "credentials/authorize", "reason": "invalid_password"]) == 1, "\(after)")
            #expect(Self.value(after, "sigillo_refusals_total", ["method": "signatures/signHash", "reason": "invalid_request"]) == 1)
            let spentReason = try #require(after.split(separator: "\n").first { $0.hasPrefix("sigillo_refusals_total{") && $0.contains("method=\"signatures/signHash\"") && !$0.contains("invalid_request") })
            #expect(spentReason.contains("_sad") && spentReason.hasSuffix(" 1"), "\(spentReason)")
            let crlAge = try #require(Self.value(after, "sigillo_crl_age_seconds", [:]), "\(after)")
            #expect(crlAge >= CertificateAuthority.clockSkewAllowance)
            let latency = ["listener": "public", "route": "/csc/v1/signatures/signHash"]
            // Every signHash answer, refused or not: two signatures, the spent SAD, the malformed body.
            #expect(Self.value(after, "sigillo_http_request_duration_seconds_count", latency) == 4)
            #expect(Self.value(after, "sigillo_http_request_duration_seconds_bucket", latency.merging(["le": "+Inf"]) { $1 }) == 4)
            #expect((Self.value(after, "sigillo_http_request_duration_seconds_sum", latency) ?? 0) > 0)
            // The first scrape is counted once it was answered: the admin listener's own requests are there too.
            #expect(Self.value(after, "sigillo_http_requests_total", ["listener": "admin", "route": "/metrics", "status": "200"]) == 1)
            // No path as sent, only routes: nothing of the credential id or the unknown method in a label.
            #expect(!after.contains(id) && !after.contains("no-such-method"))

            // Without an operator certificate the admin listener does not answer.
            let anonymous = try AdminServer.client(directory: admin.directory)
            await #expect(throws: (any Error).self) { _ = try await anonymous.execute(HTTPClientRequest(url: admin.baseURL + "/metrics"), timeout: .seconds(60)) }
            try await anonymous.shutdown()
        }
    }

    @Test("the HSM worker queue: an operation waiting while the only session is busy shows as depth 1, then 0")
    func hsmQueueDepth() async throws {
        let fixture = try TestToken(sessions: 1)
        try await AdminServer.with(fixture) { admin in
            func scrape() async throws -> String {
                let response = try await admin.client.execute(HTTPClientRequest(url: admin.baseURL + "/metrics"), timeout: .seconds(60))
                return String(buffer: try await response.body.collect(upTo: 1 << 24))
            }
            let token = fixture.token
            let idle = try await scrape()
            #expect(Self.value(idle, "sigillo_hsm_sessions", [:]) == 1 && Self.value(idle, "sigillo_hsm_queue_depth", [:]) == 0, "\(idle)")
            // The only worker holds its session until released; a second operation waits behind it.
            let started = TestEvent("the worker holds its session")
            let release = DispatchSemaphore(value: 0)
            async let busy: Void = token.withSession { _ in
                started.fire()
                release.wait()
            }
            try await started.wait()
            async let waiting: Void = token.withSession { _ in }
            while token.queuedOperations == 0 { await Task.yield() }
            // Whatever the scrape gives, the worker is released (else the test would wait for it for ever).
            let queued = (try? await scrape()) ?? "no answer"
            release.signal()
            try await busy
            try await waiting
            #expect(Self.value(queued, "sigillo_hsm_queue_depth", [:]) == 1, "\(queued)")
            #expect(Self.value(try await scrape(), "sigillo_hsm_queue_depth", [:]) == 0)
        }
    }

    @Test("what happens deep in the service moves its counters: lockouts, mail outbox, OCSP cache, HSM session loss and reconnect, Argon2id, database waits")
    func operationalCounters() async throws {
        let fixture = try TestToken(sessions: 1)
        try await AdminServer.with(fixture) { admin in
            let server = admin.server
            func scrape() async throws -> String {
                let response = try await admin.client.execute(HTTPClientRequest(url: admin.baseURL + "/metrics"), timeout: .seconds(60))
                #expect(response.status.code == 200)
                return String(buffer: try await response.body.collect(upTo: 1 << 24))
            }
            func outbox(_ text: String) -> Double {
                ["pending", "sending", "sent", "failed"].reduce(0) { $0 + (Self.value(text, "sigillo_mail_outbox", ["status": $1]) ?? .nan) }
            }
            let account = try await server.activate()
            let pem = try server.writeCertificate(account.credential, name: "holder")
            let before = try await scrape()
            // Every series exists from the first scrape, at zero where nothing happened yet.
            for (name, labels) in [("sigillo_lockouts_total", ["secret": "password"]), ("sigillo_lockouts_total", ["secret": "otp"]),
                                   ("sigillo_messages_total", ["channel": "sms", "outcome": "failed"]), ("sigillo_messages_in_flight", ["channel": "sms"]),
                                   ("sigillo_hsm_session_losses_total", [:]), ("sigillo_hsm_reconnects_total", ["result": "failed"]),
                                   ("sigillo_ocsp_answers_total", ["source": "cache"]), ("sigillo_argon2id_queue_depth", [:]),
                                   ("sigillo_database_waiting", [:]), ("sigillo_mail_deliveries_total", ["outcome": "failed"])] {
                #expect(Self.value(before, name, labels) == 0, "\(name) \(labels): \(before)")
            }
            #expect(Self.value(before, "sigillo_argon2id_threads", [:]) == Double(server.services.domain.blocking.width))
            let mails = outbox(before)
            #expect(mails >= 1, "the invitation is in the outbox: \(before)")
            let verifications = try #require(Self.value(before, "sigillo_argon2id_verifications_total", [:]))
            let acquisitions = try #require(Self.value(before, "sigillo_database_acquisitions_total", [:]))

            // Five wrong passwords lock the password: one lockout, and its notice waits in the outbox.
            for _ in 0..<Lockout.limit {
                #expect(try await server.post("/csc/v1/auth/login", basic: (account.username, account.password + "x")).status == 401)
            }
            // Two OCSP requests for the same certificate: one signature, then the cached answer.
            for name in ["first", "second"] {
                let text = try await OCSPTests.check(server, certificate: pem, name: name)
                #expect(text.contains("\(pem): good"), "\(text)")
            }
            // The token's sessions closed behind the pool's back: the next operation finds its session gone, opens a new
            // one and logs in again.
            try fixture.token.module.closeAllSessions(slot: fixture.token.slot)
            try await fixture.token.ping()

            let after = try await scrape()
            #expect(Self.value(after, "sigillo_lockouts_total", ["secret": "password"]) == 1, "\(after)")
            #expect(Self.value(after, "sigillo_lockouts_total", ["secret": "otp"]) == 0)
            #expect(outbox(after) == mails + 1, "\(after)")
            // No wrapped holder key was refused.
            #expect(Self.value(after, "sigillo_unwrapped_key_cache_total", ["event": "refusal"]) == 0, "\(after)")
            #expect(Self.value(after, "sigillo_ocsp_answers_total", ["source": "signed"]) == 1, "\(after)")
            #expect(Self.value(after, "sigillo_ocsp_answers_total", ["source": "cache"]) == 1)
            #expect(Self.value(after, "sigillo_ocsp_answers_total", ["source": "refused"]) == 0)
            #expect(Self.value(after, "sigillo_hsm_session_losses_total", [:]) == 1, "\(after)")
            #expect(Self.value(after, "sigillo_hsm_reconnects_total", ["result": "ok"]) == 1)
            #expect(Self.value(after, "sigillo_hsm_reconnects_total", ["result": "failed"]) == 0)
            // Each wrong password cost one Argon2id verification (the locked attempt's decoy too, if any): at least five.
            #expect(try #require(Self.value(after, "sigillo_argon2id_verifications_total", [:])) >= verifications + Double(Lockout.limit))
            #expect(Self.value(after, "sigillo_argon2id_queue_depth", [:]) == 0)
            #expect(try #require(Self.value(after, "sigillo_database_acquisitions_total", [:])) > acquisitions)
            #expect(Self.value(after, "sigillo_database_waiting", [:]) == 0)
            #expect(try #require(Self.value(after, "sigillo_database_wait_seconds_total", [:])) >= 0)
            // A counter is a counter: a scrape with nothing new in between moves none of them.
            let again = try await scrape()
            for (name, labels) in [("sigillo_lockouts_total", ["secret": "password"]), ("sigillo_ocsp_answers_total", ["source": "signed"]),
                                   ("sigillo_hsm_session_losses_total", [:]), ("sigillo_hsm_reconnects_total", ["result": "ok"])] {
                #expect(Self.value(again, name, labels) == Self.value(after, name, labels), "\(name)")
            }
        }
    }

    @Test("SMS handed to the notifier: sent and failed counted by channel, none left in flight")
    func messageCounters() async throws {
        struct Failing: Notifier {
            func send(_ message: OutgoingMessage) async throws { throw SigilloError(.internalError, "gateway down") }
        }
        let counters = OperationalCounters()
        let sms = OutgoingMessage(channel: "sms", recipient: "+393331234567", body: "code", createdAt: Date())
        try await counters.counting(channel: "sms") {}
        await #expect(throws: SigilloError.self) { try await counters.counting(channel: "sms") { try await Failing().send(sms) } }
        let counts = Dictionary(uniqueKeysWithValues: counters.messagesByChannel.map { ("\($0.channel)/\($0.outcome)", $0.count) })
        #expect(counts == ["sms/sent": 1, "sms/failed": 1])
        #expect(counters.messagesInFlight.map(\.count) == [0])
    }

    /// The value of the sample `name` whose labels include `labels`, from Prometheus text; nil when there is none.
    static func value(_ text: String, _ name: String, _ labels: [String: String]) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
            guard let space = line.lastIndex(of: " ") else { continue }
            let series = line[..<space]
            guard labels.allSatisfy({ series.contains("\($0.key)=\"\($0.value)\"") }) else { continue }
            return Double(line[line.index(after: space)...])
        }
        return nil
    }
}
