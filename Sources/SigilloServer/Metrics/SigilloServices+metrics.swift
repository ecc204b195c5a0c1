import Foundation

extension SigilloServices {
    /// The Prometheus text of `metrics`, after reading what is measured at scrape time rather than counted as it
    /// happens: the CRL's age, the HSM workers' sessions and queue.
    public func metricsText() async -> String {
        self.metrics.hsm(sessions: self.token.sessionCount, queued: self.token.queuedOperations)
        if let thisUpdate = await self.crl.cachedThisUpdate {
            self.metrics.crlAge(seconds: self.domain.clock.now().timeIntervalSince(thisUpdate))
        }
        return self.metrics.render()
    }
}
