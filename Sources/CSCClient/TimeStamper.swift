import Crypto
import Foundation
import SigilloCMS

/// Gets RFC 3161 signature-time-stamps (CAdES-B-T, ETSI EN 319 122-1 §5.3) from a time-stamping authority: any TSA
/// over HTTP (RFC 3161 §3.4), or the signing service's CSC v2 `signatures/timestamp`. Every token is checked before
/// it is returned: its message imprint is the digest asked for, its nonce the one sent, and it carries the TSA
/// certificate.
///
/// ```swift
/// let stamper = TimeStamper(source: .url("http://tsa.example/tsa"), http: publication)
/// let token = try await stamper.timeStamp(signatureValue: prepared.signatureValue(signature: signature))
/// ```
public struct TimeStamper: Sendable {
    /// Where tokens come from.
    public enum Source: Hashable, Sendable {
        /// A TSA's URL: `POST` of `application/timestamp-query`.
        case url(String)
        /// The signing service's `signatures/timestamp`, with the session's access token.
        case service
    }

    public let source: Source
    let service: CSCClient?
    let http: PublicationClient

    /// - Parameters:
    ///   - service: the logged-in client, for `.service`.
    ///   - http: the client for `.url`.
    public init(source: Source, service: CSCClient? = nil, http: PublicationClient) {
        self.source = source
        self.service = service
        self.http = http
    }

    /// Where the tokens come from, for messages.
    public var name: String {
        switch self.source {
        case .url(let url): return url
        case .service: return "the signing service (signatures/timestamp)"
        }
    }

    /// A checked `TimeStampToken` (DER) over the SHA-256 of `signatureValue`, with a fresh 8-byte nonce and `certReq`.
    ///
    /// - Throws: `SignatureLevelError.timeStampFailed` with the TSA's reason.
    public func timeStamp(signatureValue: [UInt8]) async throws -> [UInt8] {
        do {
            let query = try TimeStampQuery(digest: Array(SHA256.hash(data: signatureValue)), hashAlgorithm: .sha256)
            let token: [UInt8]
            switch self.source {
            case .url(let url):
                token = try await self.post(query, to: url)
            case .service:
                guard let service = self.service else { throw CMSError("no signing service session for signatures/timestamp") }
                token = try await service.timestamp(hash: query.digest, hashAlgorithmOID: "2.16.840.1.101.3.4.2.1", nonceHex: query.nonceHex)
            }
            try query.check(token: token)
            return token
        } catch let error as SignatureLevelError {
            throw error
        } catch {
            throw SignatureLevelError(.timeStampFailed, "time-stamp from \(self.name) failed: \(error)")
        }
    }

    /// RFC 3161 §3.4: the reply is read whatever the HTTP status when it is a `TimeStampResp` (a rejection may come
    /// with 4xx/5xx), otherwise the status is the error.
    func post(_ query: TimeStampQuery, to url: String) async throws -> [UInt8] {
        let answer = try await self.http.post(url, body: try query.derEncoded(), contentType: "application/timestamp-query", accept: "application/timestamp-reply")
        guard let reply = try? TimeStampReply(der: answer.body) else {
            throw CMSError("HTTP \(answer.status)\(answer.contentType.map { " (\($0))" } ?? "") instead of a time-stamp reply")
        }
        let token = try reply.grantedToken()
        if let type = answer.contentType, !type.lowercased().hasPrefix("application/timestamp-reply") {
            throw CMSError("the TSA answered \(type), not application/timestamp-reply")
        }
        return token
    }
}
