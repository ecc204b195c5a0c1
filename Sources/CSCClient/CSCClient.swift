import AsyncHTTPClient
import CSCProtocol
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// A Cloud Signature Consortium API v1 client (`POST <base>/csc/v1/<method>`, JSON in and out).
///
/// TLS always verifies the server: against the CA certificates of `trustRootsPEMFile` when given, the
/// system's trust store otherwise. There is no way to turn verification off.
///
/// ```swift
/// let client = try CSCClient(baseURL: "https://127.0.0.1:8443", trustRootsPEMFile: "certs/tls-ca.pem")
/// _ = try await client.login(username: "mario", password: password)
/// let info = try await client.credentialInfo(credentialID: id)
/// let sad = try await client.authorize(credentialID: id, hashes: digests, pin: password, otp: otp)
/// let signatures = try await client.signHash(credentialID: id, sad: sad.sad, hashes: digests,
///                                            hashAlgorithmOID: "2.16.840.1.101.3.4.2.1",
///                                            signAlgorithmOID: "1.2.840.10045.4.3.2")
/// try await client.shutdown()
/// ```
public final class CSCClient: Sendable {
    /// The service's base URL, without a trailing slash (`https://host:port`).
    public let baseURL: String
    private let http: HTTPClient
    private let timeout: TimeAmount
    /// The bearer token from the last `login`.
    private let accessToken = Mutex<String?>(nil)

    /// A client for one service.
    ///
    /// - Parameters:
    ///   - baseURL: `https://host[:port]` (an `https` URL; a path prefix is kept).
    ///   - trustRootsPEMFile: CA certificates (PEM) that the server certificate must chain to.
    ///   - timeoutSeconds: the limit for each call.
    /// - Throws: `CSCClientError` when the URL is not https or the CA file cannot be read.
    public init(baseURL: String, trustRootsPEMFile: String?, timeoutSeconds: Int64 = 60) throws {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base), url.scheme?.lowercased() == "https", url.host != nil else {
            throw CSCClientError(method: "configuration", status: nil, error: "invalid_request",
                                 errorDescription: "the server URL must be https://host[:port], not \(baseURL)")
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .fullVerification
        if let trustRootsPEMFile {
            do {
                let roots = try NIOSSLCertificate.fromPEMFile(trustRootsPEMFile)
                guard !roots.isEmpty else { throw NIOSSLError.failedToLoadCertificate }
                tls.trustRoots = .certificates(roots)
            } catch {
                throw CSCClientError(method: "configuration", status: nil, error: "invalid_request",
                                     errorDescription: "cannot read CA certificates from \(trustRootsPEMFile): \(error)")
            }
        }
        self.baseURL = base
        self.timeout = .seconds(timeoutSeconds)
        self.http = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow)
        )
    }

    /// Closes connections. Call once, when done.
    public func shutdown() async throws {
        try await self.http.shutdown()
    }

    /// `auth/login` with HTTP Basic authentication; the token is kept for the following calls.
    @discardableResult
    public func login(username: String, password: String) async throws -> CSCAccessToken {
        let basic = Data("\(username):\(password)".utf8).base64EncodedString()
        let response: CSCLoginResponse = try await self.call(
            "auth/login", CSCRequest(rememberMe: false), authorization: "Basic \(basic)")
        self.accessToken.withLock { $0 = response.accessToken }
        return CSCAccessToken(accessToken: response.accessToken, expiresIn: response.expiresIn)
    }

    /// Uses a token obtained elsewhere.
    public func use(accessToken: String) {
        self.accessToken.withLock { $0 = accessToken }
    }

    /// `credentials/list`: the holder's credential IDs.
    public func listCredentials() async throws -> [String] {
        let response: CSCListResponse = try await self.call("credentials/list", CSCRequest(), authorization: try self.bearer())
        return response.credentialIDs
    }

    /// `credentials/info` with the whole chain, certificate and authorization details.
    public func credentialInfo(credentialID: String) async throws -> CSCCredentialInfo {
        let method = "credentials/info"
        let response: CSCCredentialInfoResponse = try await self.call(
            method,
            CSCRequest(credentialID: credentialID, certificates: "chain", certInfo: true, authInfo: true),
            authorization: try self.bearer()
        )
        let certificates = try (response.cert?.certificates ?? []).map { text -> [UInt8] in
            guard let der = Base64Text.decodeLenient(text), !der.isEmpty else {
                throw CSCClientError.invalidResponse(method, status: 200, "a certificate is not base64")
            }
            return der
        }
        return CSCCredentialInfo(
            keyStatus: response.key?.status,
            keyAlgorithms: response.key?.algo ?? [],
            keyLength: response.key?.len,
            certificateStatus: response.cert?.status,
            certificates: certificates,
            multisign: max(1, response.multisign ?? 1),
            authMode: response.authMode,
            otpPresence: response.OTP?.presence,
            otpType: response.OTP?.type,
            scal: response.SCAL
        )
    }

    /// `credentials/authorize` for exactly these digests (`numSignatures` is their count).
    ///
    /// - Parameters:
    ///   - pin: the holder's PIN or password (`PIN`), when the credential needs one.
    ///   - otp: the one-time password (`OTP`), when the credential needs one.
    ///   - numSignatures: how many signatures the SAD allows (at least the hashes' count, at most `multisign`);
    ///     the hashes' count when nil.
    public func authorize(credentialID: String, hashes: [[UInt8]], pin: String?, otp: String?, numSignatures: Int? = nil) async throws -> CSCAuthorization {
        let response: CSCAuthorizeResponse = try await self.call(
            "credentials/authorize",
            CSCRequest(
                credentialID: credentialID,
                numSignatures: numSignatures ?? hashes.count,
                hash: hashes.map(Base64Text.encode),
                PIN: pin,
                OTP: otp
            ),
            authorization: try self.bearer()
        )
        return CSCAuthorization(sad: response.SAD, expiresIn: response.expiresIn)
    }

    /// `signatures/signHash`: one signature per digest, in the same order.
    ///
    /// - Parameters:
    ///   - hashAlgorithmOID: `hashAlgo`, e.g. `2.16.840.1.101.3.4.2.1` (SHA-256).
    ///   - signAlgorithmOID: `signAlgo`, e.g. `1.2.840.10045.4.3.2` (ECDSA with SHA-256) or
    ///     `1.2.840.113549.1.1.11` (RSA PKCS#1 v1.5 with SHA-256).
    public func signHash(
        credentialID: String,
        sad: String,
        hashes: [[UInt8]],
        hashAlgorithmOID: String,
        signAlgorithmOID: String
    ) async throws -> [[UInt8]] {
        let method = "signatures/signHash"
        let response: CSCSignHashResponse = try await self.call(
            method,
            CSCRequest(
                credentialID: credentialID,
                hash: hashes.map(Base64Text.encode),
                hashAlgo: hashAlgorithmOID,
                signAlgo: signAlgorithmOID,
                SAD: sad
            ),
            authorization: try self.bearer()
        )
        guard response.signatures.count == hashes.count else {
            throw CSCClientError.invalidResponse(method, status: 200, "\(response.signatures.count) signatures for \(hashes.count) hashes")
        }
        return try response.signatures.map { text in
            guard let signature = Base64Text.decodeLenient(text), !signature.isEmpty else {
                throw CSCClientError.invalidResponse(method, status: 200, "a signature is not base64")
            }
            return signature
        }
    }

    /// The methods the service lists in v2 `info` (no token needed); `signatures/timestamp` among them means it
    /// time-stamps (CAdES-B-T).
    public func serviceMethods() async throws -> [String] {
        let response: CSCInfoResponse = try await self.call("info", CSCRequest(), authorization: nil, api: "csc/v2")
        return response.methods
    }

    /// v2 `signatures/timestamp`: the service's RFC 3161 `TimeStampToken` over one digest, DER. The token is not
    /// checked here (`TimeStampQuery.check(token:)` does).
    ///
    /// - Parameters:
    ///   - hash: the digest to time-stamp.
    ///   - hashAlgorithmOID: its algorithm, e.g. `2.16.840.1.101.3.4.2.1` (SHA-256).
    ///   - nonceHex: the nonce the token must echo, hex.
    public func timestamp(hash: [UInt8], hashAlgorithmOID: String, nonceHex: String?) async throws -> [UInt8] {
        let method = "signatures/timestamp"
        let response: CSCTimestampResponse = try await self.call(
            method, CSCTimestampRequest(hash: Base64Text.encode(hash), hashAlgo: hashAlgorithmOID, nonce: nonceHex),
            authorization: try self.bearer(), api: "csc/v2")
        guard let token = Base64Text.decodeLenient(response.timestamp), !token.isEmpty else {
            throw CSCClientError.invalidResponse(method, status: 200, "the time-stamp token is not base64")
        }
        return token
    }

    // MARK: - Transport

    private func bearer() throws -> String {
        guard let token = self.accessToken.withLock({ $0 }) else {
            throw CSCClientError(method: "auth/login", status: nil, error: "invalid_token", errorDescription: "not logged in")
        }
        return "Bearer \(token)"
    }

    /// POSTs `body` as JSON to `<base>/csc/v1/<method>` and decodes a 2xx answer, or throws the CSC error.
    func call<Body: Encodable, Answer: Decodable>(_ method: String, _ body: Body, authorization: String?, api: String = "csc/v1") async throws -> Answer {
        var request = HTTPClientRequest(url: "\(self.baseURL)/\(api)/\(method)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))

        let status: Int
        let data: Data
        do {
            let response = try await self.http.execute(request, timeout: self.timeout)
            status = Int(response.status.code)
            let buffer = try await response.body.collect(upTo: 16 << 20)
            data = Data(buffer.readableBytesView)
        } catch let error as NIOSSLError {
            throw CSCClientError(
                method: method, status: nil, error: "transport_error",
                errorDescription: "TLS handshake with \(self.baseURL) failed (does the CA file match the server?): \(error)")
        } catch {
            throw CSCClientError(method: method, status: nil, error: "transport_error", errorDescription: "\(error)")
        }
        guard (200..<300).contains(status) else {
            if let failure = try? JSONDecoder().decode(CSCErrorResponse.self, from: data) {
                throw CSCClientError(method: method, status: status, error: failure.error, errorDescription: failure.errorDescription)
            }
            let text = String(decoding: data.prefix(200), as: UTF8.self)
            throw CSCClientError(method: method, status: status, error: "http_\(status)", errorDescription: text.isEmpty ? nil : text)
        }
        do {
            return try JSONDecoder().decode(Answer.self, from: data)
        } catch {
            throw CSCClientError.invalidResponse(method, status: status, "\(error)")
        }
    }
}
