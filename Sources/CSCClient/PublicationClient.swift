import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// Plain HTTP (or HTTPS with the system's trust store) to the places a CA publishes signed objects: RFC 3161
/// time-stamping authorities, CRL distribution points, OCSP responders. What it fetches is signed, so the transport
/// adds no trust; callers check every object before using it.
public final class PublicationClient: Sendable {
    private let http: HTTPClient
    private let timeout: TimeAmount
    /// The largest answer read (a CRL of a large CA is a few megabytes).
    static let maximumBody = 16 << 20

    /// A client with `timeoutSeconds` for each request; follows at most three redirects.
    public init(timeoutSeconds: Int64 = 30) {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        self.timeout = .seconds(timeoutSeconds)
        self.http = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: HTTPClient.Configuration(
                tlsConfiguration: tls, redirectConfiguration: .follow(max: 3, allowCycles: false)))
    }

    /// Closes connections. Call once, when done.
    public func shutdown() async throws {
        try await self.http.shutdown()
    }

    /// An answer: status, content type and body.
    public struct Answer: Sendable {
        public let status: Int
        public let contentType: String?
        public let body: [UInt8]
    }

    /// `GET url`.
    ///
    /// - Throws: `transport` when there is no answer.
    public func get(_ url: String, accept: String) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "Accept", value: accept)
        return try await self.execute(request)
    }

    /// `POST url` with `body` of `contentType`.
    public func post(_ url: String, body: [UInt8], contentType: String, accept: String) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: contentType)
        request.headers.add(name: "Accept", value: accept)
        request.body = .bytes(ByteBuffer(bytes: body))
        return try await self.execute(request)
    }

    private func execute(_ request: HTTPClientRequest) async throws -> Answer {
        guard let url = URL(string: request.url), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
            throw PublicationError(url: request.url, reason: "not an http:// or https:// URL")
        }
        do {
            let response = try await self.http.execute(request, timeout: self.timeout)
            let body = try await response.body.collect(upTo: Self.maximumBody)
            return Answer(status: Int(response.status.code), contentType: response.headers.first(name: "Content-Type"), body: Array(buffer: body))
        } catch {
            throw PublicationError(url: request.url, reason: "\(error)")
        }
    }
}

/// No answer from a publication URL.
public struct PublicationError: Error, Hashable, CustomStringConvertible, Sendable {
    public let url: String
    public let reason: String

    public var description: String { "\(self.url): \(self.reason)" }
}
