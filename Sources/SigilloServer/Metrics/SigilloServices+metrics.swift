import Foundation
import SigilloDomain

extension SigilloServices {
    /// The Prometheus text of `metrics`, after reading what is measured at scrape time rather than counted as it
    /// happens: the CRL's age, the HSM workers' sessions and queue.
    public func metricsText() async -> String {
        let metrics = self.metrics
        metrics.hsm(sessions: self.token.sessionCount, queued: self.token.queuedOperations)
        let health = self.token.sessionHealth
        metrics.total("sigillo_hsm_session_losses_total", [], Double(health.losses))
        metrics.total("sigillo_hsm_reconnects_total", [("result", "ok")], Double(health.reconnects))
        metrics.total("sigillo_hsm_reconnects_total", [("result", "failed")], Double(health.failedReconnects))
        let unwrap = self.token.unwrapStatistics
        for (event, count) in [("hit", unwrap.hits), ("unwrap", unwrap.unwraps), ("eviction", unwrap.evictions), ("refusal", unwrap.refusals)] {
            metrics.total("sigillo_unwrapped_key_cache_total", [("event", event)], Double(count))
        }
        if let thisUpdate = await self.crl.cachedThisUpdate {
            metrics.crlAge(seconds: self.domain.clock.now().timeIntervalSince(thisUpdate))
        }
        let ocsp = self.ocsp.cacheStatistics
        metrics.total("sigillo_ocsp_answers_total", [("source", "cache")], Double(ocsp.hits))
        metrics.total("sigillo_ocsp_answers_total", [("source", "signed")], Double(ocsp.signatures))
        metrics.total("sigillo_ocsp_answers_total", [("source", "refused")], Double(ocsp.refusals))
        let blocking = self.domain.blocking
        metrics.gauge("sigillo_argon2id_queue_depth", [], Double(blocking.queued))
        metrics.gauge("sigillo_argon2id_running", [], Double(blocking.active))
        metrics.gauge("sigillo_argon2id_threads", [], Double(blocking.width))
        metrics.total("sigillo_argon2id_verifications_total", [], Double(self.domain.passwords.verifications))
        let counters = self.domain.counters
        for lockout in counters.lockoutsBySecret {
            metrics.total("sigillo_lockouts_total", [("secret", lockout.secret)], Double(lockout.count))
        }
        for message in counters.messagesByChannel {
            metrics.total("sigillo_messages_total", [("channel", message.channel), ("outcome", message.outcome)], Double(message.count))
        }
        for inFlight in counters.messagesInFlight {
            metrics.gauge("sigillo_messages_in_flight", [("channel", inFlight.channel)], Double(inFlight.count))
        }
        let deliveries = self.mailDispatcher.deliveries
        metrics.total("sigillo_mail_deliveries_total", [("outcome", "sent")], Double(deliveries.sent))
        metrics.total("sigillo_mail_deliveries_total", [("outcome", "retried")], Double(deliveries.retried))
        metrics.total("sigillo_mail_deliveries_total", [("outcome", "failed")], Double(deliveries.failed))
        // The outbox as the database has it (every node's mail): absent when the database does not answer.
        if let counts = try? await self.store.mailCounts() {
            for status in [QueuedMail.Status.pending, .sending, .sent, .failed] {
                metrics.gauge("sigillo_mail_outbox", [("status", status.rawValue)], Double(counts[status] ?? 0))
            }
        }
        if let waits = (self.store as? any PoolWaitsReporting)?.poolWaits.snapshot {
            metrics.gauge("sigillo_database_waiting", [], Double(waits.waiting))
            metrics.total("sigillo_database_acquisitions_total", [], Double(waits.acquisitions))
            metrics.total("sigillo_database_wait_seconds_total", [], waits.seconds)
        }
        return metrics.render()
    }
}
