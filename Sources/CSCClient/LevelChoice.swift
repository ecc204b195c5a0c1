import SigilloCMS

/// The CAdES level `sigillo sign` writes and where its time-stamps come from: `--tsa` (or `SIGILLO_TSA_URL`) first,
/// else the signing service's `signatures/timestamp` when its v2 `info` lists it. Without a requested level: B-T when
/// one of these is available, B-B otherwise.
public struct LevelChoice: Hashable, Sendable {
    public let level: CAdESLevel
    /// nil for B-B.
    public let source: TimeStamper.Source?

    public init(level: CAdESLevel, source: TimeStamper.Source?) {
        self.level = level
        self.source = source
    }

    /// Chooses, asking the service only when it has to.
    ///
    /// - Parameters:
    ///   - requested: `--level`, if given.
    ///   - tsaURL: `--tsa` or `SIGILLO_TSA_URL`, if given.
    ///   - server: the service's URL, for messages.
    ///   - serviceMethods: the service's v2 `info` `methods`.
    /// - Throws: `SignatureLevelError.noTimeStampAuthority` when B-T or B-LT is requested and there is no TSA.
    public static func resolve(requested: CAdESLevel?, tsaURL: String?, server: String,
                               serviceMethods: () async throws -> [String]) async throws -> LevelChoice {
        if requested == .b { return LevelChoice(level: .b, source: nil) }
        if let tsaURL, !tsaURL.isEmpty { return LevelChoice(level: requested ?? .t, source: .url(tsaURL)) }
        let missing: String
        do {
            if try await serviceMethods().contains("signatures/timestamp") {
                return LevelChoice(level: requested ?? .t, source: .service)
            }
            missing = "\(server) does not offer signatures/timestamp"
        } catch {
            missing = "\(server) did not say whether it time-stamps (\(error))"
        }
        guard let requested else { return LevelChoice(level: .b, source: nil) }
        throw SignatureLevelError(
            .noTimeStampAuthority,
            "CAdES \(requested.rawValue) needs a time-stamping authority: \(missing); give one with --tsa URL or SIGILLO_TSA_URL, or sign at --level B-B")
    }
}
