import Foundation

/// How many anonymous requests (CSC `auth/login`, activation, recovery, self-service and their web forms) the public
/// listener takes, per client address and per account (`ServerConfiguration.rateLimits`, `"rateLimits": {…}`).
///
/// Per address, in memory on each node: a token bucket holding `perAddress` requests, refilled at `perAddress` per
/// `window`. Per account (the username, email, account, activation or reset code the request names), across nodes
/// through the store: at most `perAccount` requests in any `window`. A request over either limit gets 429
/// `too_many_requests` with `Retry-After`. 0 turns a limit off.
public struct RateLimitSettings: Codable, Sendable, Equatable {
    /// Anonymous requests per client address in `window` (a burst may use them at once).
    public var perAddress = 30
    /// Anonymous requests naming one account in `window`, whatever the address.
    public var perAccount = 10
    /// Seconds.
    public var window = 60
    /// Client addresses tracked at once; past it, the idle ones are forgotten first, then the least recently seen.
    public var maxTrackedAddresses = 100_000
    /// IPv6 clients are counted by network prefix of this length (one host usually holds a whole /64).
    public var ipv6PrefixLength = 64
    /// Proxies whose `X-Forwarded-For` is believed (exact IP addresses). Empty: the header is ignored and the client
    /// address is the TCP peer's.
    public var trustedProxies: [String] = []

    public init() {}

    /// Limits that a test's or benchmark's single address never reaches.
    public static var unlimited: RateLimitSettings {
        var settings = RateLimitSettings()
        settings.perAddress = 0
        settings.perAccount = 0
        return settings
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case perAddress, perAccount, window, maxTrackedAddresses, ipv6PrefixLength, trustedProxies
    }

    /// Every field may be left out; an unknown one is refused, as in `ServerConfiguration`.
    public init(from decoder: any Decoder) throws {
        try ConfigurationError.refuseUnknownFields(decoder, known: CodingKeys.self, what: "rateLimits field")
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.perAddress = try container.decodeIfPresent(Int.self, forKey: .perAddress) ?? self.perAddress
        self.perAccount = try container.decodeIfPresent(Int.self, forKey: .perAccount) ?? self.perAccount
        self.window = try container.decodeIfPresent(Int.self, forKey: .window) ?? self.window
        self.maxTrackedAddresses = try container.decodeIfPresent(Int.self, forKey: .maxTrackedAddresses) ?? self.maxTrackedAddresses
        self.ipv6PrefixLength = try container.decodeIfPresent(Int.self, forKey: .ipv6PrefixLength) ?? self.ipv6PrefixLength
        self.trustedProxies = try container.decodeIfPresent([String].self, forKey: .trustedProxies) ?? self.trustedProxies
        try self.validate()
    }

    /// - Throws: `ConfigurationError` for a negative limit, a window under one second, or a prefix outside 0…128.
    public func validate() throws {
        guard self.perAddress >= 0, self.perAccount >= 0 else { throw ConfigurationError("rateLimits: limits must be 0 (off) or more") }
        guard self.window >= 1 else { throw ConfigurationError("rateLimits.window must be at least 1 second") }
        guard self.maxTrackedAddresses >= 1 else { throw ConfigurationError("rateLimits.maxTrackedAddresses must be at least 1") }
        guard (0...128).contains(self.ipv6PrefixLength) else { throw ConfigurationError("rateLimits.ipv6PrefixLength must be 0…128") }
        for proxy in self.trustedProxies where ClientAddress.parse(proxy) == nil {
            throw ConfigurationError("rateLimits.trustedProxies: '\(proxy)' is not an IP address")
        }
    }
}
