import CoreMetrics
import Prometheus
import Synchronization

/// The server's metrics, in the Prometheus text format: swift-metrics instruments made by a `PrometheusMetricsFactory`
/// over a registry of this server's own (not the process-wide `MetricsSystem`, so that servers in one test process
/// never share counters). `GET /metrics` on the admin listener renders it.
///
/// - `sigillo_http_requests_total{listener, method, route, status}`: answers, by the route the router matched
///   (`/csc/v1/credentials/info`, `/admin/v1/holders/{id}`, `NotFound`), never the path as sent, so the label set
///   stays small.
/// - `sigillo_http_request_duration_seconds{listener, route}`: a histogram of the time to answer.
/// - `sigillo_signatures_total{algorithm}`: signatures made through `signatures/signHash`, by CSC `signAlgo` OID.
/// - `sigillo_refusals_total{method, reason}`: `credentials/authorize` and `signatures/signHash` refused, by error code
///   (`invalid_password`, `invalid_otp`, `otp_replayed`, `pin_locked`, `invalid_sad`, `invalid_request`, ...).
/// - `sigillo_crl_age_seconds`: seconds since the cached CRL's `thisUpdate`, read at each scrape (`SigilloServices.metricsText()`);
///   absent until the first CRL is built.
/// - `sigillo_hsm_sessions`, `sigillo_hsm_queue_depth`: the HSM worker pool's sessions and the operations waiting for
///   one, read at each scrape.
/// - Counted by the module where it happens and mirrored at each scrape (`SigilloServices.metricsText()`): HSM session
///   losses and reconnects, OCSP answers by source, lockouts, SMS and mail outcomes, database waits; and gauges read
///   then: the Argon2id queue, the SMS in flight, the mail outbox by status.
public final class SigilloMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    /// The totals last mirrored, by metric and labels (see `total`).
    private let mirrored = Mutex<[String: Double]>([:])

    public init() {
        self.registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: self.registry)
        // Seconds: from a cached-key signature (milliseconds) to an Argon2id-bound authorize under load.
        factory.defaultDurationHistogramBuckets = [.milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                                                   .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10)]
        self.factory = factory
    }

    /// One answer of `listener` (`public`, `admin`, `publication`).
    func request(listener: String, method: String, route: String, status: Int, duration: Duration) {
        CoreMetrics.Counter(label: "sigillo_http_requests_total",
                dimensions: [("listener", listener), ("method", method), ("route", route), ("status", String(status))],
                factory: self.factory).increment()
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        CoreMetrics.Timer(label: "sigillo_http_request_duration_seconds", dimensions: [("listener", listener), ("route", route)],
              factory: self.factory).recordNanoseconds(nanoseconds)
    }

    /// `count` signatures made with the CSC `signAlgo` OID `algorithm` (only what the server accepted and signed).
    func signatures(algorithm: String, count: Int) {
        CoreMetrics.Counter(label: "sigillo_signatures_total", dimensions: [("algorithm", algorithm)], factory: self.factory).increment(by: count)
    }

    /// A CSC `method` (`credentials/authorize`, `signatures/signHash`) refused for `reason` (the error code).
    func refusal(method: String, reason: String) {
        CoreMetrics.Counter(label: "sigillo_refusals_total", dimensions: [("method", method), ("reason", reason)], factory: self.factory).increment()
    }

    /// The age of the CRL relying parties get now: seconds since its `thisUpdate`.
    func crlAge(seconds: Double) {
        CoreMetrics.Gauge(label: "sigillo_crl_age_seconds", factory: self.factory).record(seconds)
    }

    /// The HSM worker pool: its sessions and the operations waiting for one.
    func hsm(sessions: Int, queued: Int) {
        CoreMetrics.Gauge(label: "sigillo_hsm_sessions", factory: self.factory).record(sessions)
        CoreMetrics.Gauge(label: "sigillo_hsm_queue_depth", factory: self.factory).record(queued)
    }

    /// A gauge read at scrape time.
    func gauge(_ label: String, _ dimensions: [(String, String)] = [], _ value: Double) {
        CoreMetrics.Gauge(label: label, dimensions: dimensions, factory: self.factory).record(value)
    }

    /// A counter kept as a running total elsewhere (an atomic in the module where it happens): Prometheus gets the
    /// increase since the last scrape, so the series is an ordinary monotonic counter. A total that went down (its
    /// owner was replaced) is taken as a new start.
    func total(_ label: String, _ dimensions: [(String, String)] = [], _ value: Double) {
        let key = ([label] + dimensions.map { "\($0.0)=\($0.1)" }).joined(separator: "\u{1F}")
        let increase = self.mirrored.withLock { mirrored -> Double in
            let last = mirrored[key]
            mirrored[key] = value
            guard let last else { return value }
            return value >= last ? value - last : value
        }
        let counter = CoreMetrics.FloatingPointCounter(label: label, dimensions: dimensions, factory: self.factory)
        // Made at the first scrape even at zero, so the series exists before the first event.
        counter.increment(by: increase)
    }

    /// Every metric, in the Prometheus text exposition format (version 0.0.4).
    public func render() -> String {
        var buffer: [UInt8] = []
        self.registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
