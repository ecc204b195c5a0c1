import SigilloDomain
import Foundation

/// Keeps the current CRL: built on demand, cached, and rebuilt when it goes stale.
///
/// A cached CRL is served again only while all of these hold:
/// - nothing marked it dirty (`markDirty()`, which `CredentialLifecycle` calls on every suspend, reinstate and revoke);
/// - the store still lists exactly the same suspended and revoked certificates (so a change made by another node,
///   or by any other path, is seen on the next request even without `markDirty()`);
/// - it is younger than `refreshInterval` (half its validity by default), so a relying party never gets one past
///   its `nextUpdate`.
///
/// Each build takes a new CRL number from the store, so numbers increase across restarts and nodes.
public actor CRLPublisher {
    /// A built CRL.
    public struct Published: Sendable {
        public let der: [UInt8]
        public let number: Int64
        public let thisUpdate: Date
        public let nextUpdate: Date
        let entries: [CRLEntry]
        /// When it was built (`thisUpdate` is dated a little before: see `CertificateAuthority.clockSkewAllowance`).
        let builtAt: Date
    }

    let ca: CertificateAuthority
    let store: any CredentialStore & PKIStateStore
    let clock: ServiceClock
    /// `nextUpdate - thisUpdate`.
    public let validity: TimeInterval
    /// Age after which the cached CRL is rebuilt even if nothing changed.
    public let refreshInterval: TimeInterval
    private var cached: Published?
    private var dirty = true

    public init(ca: CertificateAuthority, store: any CredentialStore & PKIStateStore, clock: ServiceClock = .system, validity: TimeInterval = 86_400, refreshInterval: TimeInterval? = nil) {
        self.ca = ca
        self.store = store
        self.clock = clock
        self.validity = validity
        self.refreshInterval = refreshInterval ?? validity / 2
    }

    /// When the cached CRL says it was issued (its `thisUpdate`), without building one; nil before the first build.
    public var cachedThisUpdate: Date? { self.cached?.thisUpdate }

    /// Forces a rebuild on the next `current()`.
    public func markDirty() {
        self.dirty = true
    }

    /// The current CRL, rebuilt first if the cache is dirty, stale or out of date with the store.
    ///
    /// - Throws: store errors, `PKCS11Error` from the token.
    public func current() async throws -> Published {
        let entries = try await self.store.unusableCredentials().compactMap { try CRLEntry(credential: $0) }
        let now = self.clock.now()
        if !self.dirty, let cached = self.cached, cached.entries == entries,
           now >= cached.builtAt, now.timeIntervalSince(cached.builtAt) < self.refreshInterval {
            return cached
        }
        // Cleared before the awaits below: a change that lands while this build runs marks it dirty again.
        self.dirty = false
        let number = try await self.store.nextCRLNumber()
        // A minute back, as relying parties' clocks may be behind ours (see `CertificateAuthority.clockSkewAllowance`).
        let thisUpdate = CertificateAuthority.wholeSeconds(now).addingTimeInterval(-CertificateAuthority.clockSkewAllowance)
        let nextUpdate = CertificateAuthority.wholeSeconds(now).addingTimeInterval(self.validity)
        let der: [UInt8]
        do {
            der = try await CRLBuilder.build(ca: self.ca, entries: entries, number: number, thisUpdate: thisUpdate, nextUpdate: nextUpdate)
        } catch {
            self.dirty = true
            throw error
        }
        let published = Published(der: der, number: number, thisUpdate: thisUpdate, nextUpdate: nextUpdate, entries: entries,
                                  builtAt: CertificateAuthority.wholeSeconds(now))
        // With concurrent builds, keep the newest number.
        if let cached = self.cached, cached.number > number { return published }
        self.cached = published
        return published
    }
}
