import Foundation
import PKCS11
import SigilloDomain
import SwiftASN1
import X509

/// The time-stamping authority (RFC 3161, with RFC 5816's ESSCertIDv2): a key in the token and a certificate issued by
/// the CA with the critical extended key usage `id-kp-timeStamping`.
///
/// `respond(to:)` answers a DER `TimeStampReq` with a DER `TimeStampResp` (the body of `POST /tsa`,
/// `application/timestamp-query` → `application/timestamp-reply`) and never throws: anything wrong with the request
/// is a `rejection` with the `PKIFailureInfo` that says why, a failure of the token `systemFailure`.
/// `timeStampToken(hash:hashAlgorithmOID:nonce:)` makes the token alone for CSC v2 `signatures/timestamp`.
///
/// Each granted request costs one signature of the token and the endpoint is anonymous, so grants are bounded by a
/// token bucket (`Settings.signingBurst` at once, `Settings.signingRate` per second); past it the answer is a
/// rejection with `systemFailure` and statusString "busy" (`Reply.busy`, for HTTP 503 with `Retry-After`). Rejections
/// are not signed and cost nothing.
///
/// Time-stamp serial numbers are random (see `TimeStampTokenWriter.randomSerialNumber()`): nodes sharing the key and
/// certificate need no coordination. `genTime` is the service clock to the millisecond, in UTC.
public struct TimeStampAuthority: Sendable {
    /// `Accuracy` of `genTime` (RFC 3161 §2.4.2): left out of the token when both are 0.
    public struct Accuracy: Hashable, Sendable {
        /// Whole seconds, 0 or more.
        public var seconds: Int
        /// Milliseconds, 0 to 999.
        public var millis: Int

        public init(seconds: Int = 0, millis: Int = 0) {
            self.seconds = seconds
            self.millis = millis
        }
    }

    /// What the authority stamps under and how fast.
    public struct Settings: Hashable, Sendable {
        /// The TSA policy (`TSTInfo.policy`): a request naming another one is refused with `unacceptedPolicy`.
        public var policy: ASN1ObjectIdentifier
        /// The accuracy stated in every token.
        public var accuracy: Accuracy
        /// Signatures allowed at once.
        public var signingBurst: Int
        /// Signatures per second, on average.
        public var signingRate: Double
        /// Whether tokens name the TSA (`tsa [0] GeneralName`, the directoryName of the TSA certificate's subject).
        public var includeTSAName: Bool

        public init(policy: ASN1ObjectIdentifier, accuracy: Accuracy = Accuracy(seconds: 1), signingBurst: Int = 100, signingRate: Double = 50,
                    includeTSAName: Bool = true) {
            self.policy = policy
            self.accuracy = accuracy
            self.signingBurst = signingBurst
            self.signingRate = signingRate
            self.includeTSAName = includeTSAName
        }

        /// Settings with the policy as a dotted OID (`1.3.6.1.4.1.99999.1.1`).
        ///
        /// - Throws: `SigilloError.invalidRequest` for a malformed OID.
        public init(policyOID: String, accuracy: Accuracy = Accuracy(seconds: 1), signingBurst: Int = 100, signingRate: Double = 50,
                    includeTSAName: Bool = true) throws {
            guard let policy = try? ASN1ObjectIdentifier(dotRepresentation: policyOID) else {
                throw SigilloError(.invalidRequest, "the TSA policy '\(policyOID)' is not a dotted object identifier")
            }
            self.init(policy: policy, accuracy: accuracy, signingBurst: signingBurst, signingRate: signingRate, includeTSAName: includeTSAName)
        }

        /// The policy, dotted.
        public var policyOID: String { self.policy.description }

        func validated() throws -> Settings {
            guard self.accuracy.seconds >= 0, (0...999).contains(self.accuracy.millis) else {
                throw SigilloError(.invalidRequest, "the TSA accuracy must be 0 or more seconds and 0 to 999 milliseconds")
            }
            guard self.signingBurst >= 1, self.signingRate.isFinite, self.signingRate >= 0 else {
                throw SigilloError(.invalidRequest, "the TSA signing burst must be at least 1 and its rate 0 or more per second")
            }
            return self
        }
    }

    /// A `TimeStampResp`, DER, and what it says.
    public struct Reply: Hashable, Sendable {
        /// The DER `TimeStampResp` to send (`application/timestamp-reply`), whatever the outcome.
        public let der: [UInt8]
        /// Status `granted` with a token.
        public let granted: Bool
        /// Refused because the signing budget is spent (rejection, systemFailure, "busy"): answer 503.
        public let busy: Bool
        /// When refused, why.
        public let failureInfo: PKIFailureInfo?
        /// When busy, the whole seconds until a signature is available again (`Retry-After`).
        public let retryAfter: Int?
    }

    /// The token holding the TSA key.
    public let token: Token
    /// The TSA key's `CKA_ID`.
    public let keyID: String
    /// The TSA certificate.
    public let certificate: Certificate
    /// The TSA certificate, DER.
    public let certificateDER: [UInt8]
    /// The TSA certificate, PEM.
    public let certificatePEM: String
    /// The issuing CA certificate(s), DER, sent with the TSA certificate when a request asks for it.
    public let chain: [[UInt8]]
    public let settings: Settings
    let clock: ServiceClock
    let writer: TimeStampTokenWriter
    let budget: SigningBudget

    /// `id-kp-timeStamping`.
    static let timeStampingOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 3, 8]

    /// A TSA whose key `keyID` is in `token` and whose certificate is `certificate`.
    ///
    /// Does not ask the token: call `checkKeyInToken()` to be sure the key is there and matches.
    ///
    /// - Parameters:
    ///   - chain: the issuing CA certificate(s), DER.
    ///   - clock: the time source of `genTime` and of the signing budget.
    /// - Throws: `SigilloError.invalidRequest` if the certificate does not have the extended key usage
    ///   id-kp-timeStamping alone and critical (RFC 3161 §2.3), its key is neither EC P-256/P-384 nor RSA, or the
    ///   settings are out of range.
    public init(token: Token, keyID: String, certificate: Certificate, chain: [[UInt8]], clock: ServiceClock = .system, settings: Settings) throws {
        try Self.checkTimeStampingUsage(certificate)
        self.token = token
        self.keyID = keyID
        self.certificate = certificate
        self.certificateDER = try CertificateAuthority.der(of: certificate)
        self.certificatePEM = try CertificateAuthority.pem(of: certificate)
        self.chain = chain
        self.settings = try settings.validated()
        self.clock = clock
        let key = try TokenPrivateKey(token: token, keyID: keyID, publicKey: certificate.publicKey)
        self.writer = try TimeStampTokenWriter(key: key, certificateDER: self.certificateDER, chain: chain)
        self.budget = SigningBudget(burst: settings.signingBurst, rate: settings.signingRate)
    }

    /// A TSA whose certificate is `certificatePEM`.
    public init(token: Token, keyID: String, certificatePEM: String, chain: [[UInt8]], clock: ServiceClock = .system, settings: Settings) throws {
        try self.init(token: token, keyID: keyID, certificate: try Certificate(pemEncoded: certificatePEM), chain: chain, clock: clock, settings: settings)
    }

    /// A TSA whose certificate is `certificateDER`.
    public init(token: Token, keyID: String, certificateDER: [UInt8], chain: [[UInt8]], clock: ServiceClock = .system, settings: Settings) throws {
        try self.init(token: token, keyID: keyID, certificate: try Certificate(derEncoded: certificateDER), chain: chain, clock: clock, settings: settings)
    }

    /// Generates the TSA key pair in the token and has `ca` issue its certificate.
    ///
    /// If the certificate cannot be made, the new key pair is destroyed again.
    ///
    /// - Parameters:
    ///   - keyID: the key's `CKA_ID`; must not exist yet.
    ///   - algorithm: the TSA key (EC P-256 signs with SHA-256, P-384 with SHA-384, RSA PKCS#1 v1.5 with SHA-256).
    ///   - name: the TSA certificate's subject.
    ///   - pkiBaseURL: the plain-HTTP publication URL named in the certificate (CRL, OCSP, CA issuers).
    ///   - now: the start of the certificate's validity (truncated to whole seconds).
    ///   - validityYears: calendar years the certificate is valid (1 to 100).
    ///   - clock: the TSA's time source (`genTime`, the signing budget).
    /// - Throws: `PKCS11Error.keyAlreadyExists` if `keyID` is taken, other `PKCS11Error`s from the token,
    ///   `SigilloError.invalidRequest` for bad input.
    public static func create(
        token: Token,
        keyID: String,
        algorithm: KeyAlgorithm = .ecP256,
        ca: CertificateAuthority,
        name: DistinguishedName,
        pkiBaseURL: String,
        now: Date,
        validityYears: Int = 5,
        clock: ServiceClock = .system,
        settings: Settings
    ) async throws -> TimeStampAuthority {
        let settings = try settings.validated()
        let spki = try await token.generateKeyPair(id: keyID, algorithm: algorithm, label: keyID)
        do {
            let certificate = try await ca.issueTimeStampingCertificate(
                publicKeySPKI: spki, name: name, notBefore: now, validityYears: validityYears, pkiBaseURL: pkiBaseURL)
            return try TimeStampAuthority(token: token, keyID: keyID, certificate: certificate, chain: ca.chainDER, clock: clock, settings: settings)
        } catch {
            _ = try? await token.destroyKeyPair(id: keyID)
            throw error
        }
    }

    /// Checks that the TSA key is in the token and that its public key is the certificate's (the certificate's
    /// critical id-kp-timeStamping was checked when the TSA was made).
    ///
    /// - Throws: `PKCS11Error.keyNotFound`, or `SigilloError.certificateInvalid` on a mismatch.
    public func checkKeyInToken() async throws {
        try Self.checkTimeStampingUsage(self.certificate)
        let spki = try await self.token.publicKey(id: self.keyID)
        guard try Certificate.PublicKey(derEncoded: spki) == self.certificate.publicKey else {
            throw SigilloError(.certificateInvalid, "the TSA certificate does not match the key '\(self.keyID)' in the token")
        }
    }

    /// Time-stamps signed (or attempted, if the token failed) since start: what the signing budget let through.
    public var signatureCount: Int { self.budget.count }

    /// Throws unless `certificate` has the extended key usage id-kp-timeStamping, alone and critical.
    static func checkTimeStampingUsage(_ certificate: Certificate) throws {
        guard let ext = certificate.extensions.first(where: { $0.oid == .X509ExtensionID.extendedKeyUsage }), ext.critical,
              let usage = try? ExtendedKeyUsage(ext), Array(usage) == [.timeStamping]
        else {
            throw SigilloError(.invalidRequest, "the TSA certificate must have the extended key usage timeStamping only, critical (RFC 3161 §2.3)")
        }
    }

    // MARK: RFC 3161 over HTTP

    /// The DER `TimeStampResp` for a DER `TimeStampReq`. Never throws.
    ///
    /// - Malformed input (not DER, trailing bytes, a hash of the wrong length, a nonce over 64 octets): rejection,
    ///   badDataFormat; a version other than 1: badRequest; a hash other than SHA-256/384/512: badAlg; a `reqPolicy`
    ///   other than ours: unacceptedPolicy; any extension: unacceptedExtension.
    /// - The clock outside the TSA certificate's validity: rejection, timeNotAvailable.
    /// - The signing budget spent: rejection, systemFailure, "busy" (`busy`); the token failing: rejection,
    ///   systemFailure.
    /// - Otherwise granted, with the TSA certificate and chain in the token when `certReq` is true.
    public func respond(to request: [UInt8]) async -> Reply {
        let parsed: TimeStampRequest
        do {
            parsed = try Self.parse(request, policy: self.settings.policy)
        } catch {
            return Self.rejection(error.failureInfo, error.reason)
        }
        switch await self.stamp(parsed) {
        case .granted(let token):
            return Reply(der: Self.grantedResponse(token), granted: true, busy: false, failureInfo: nil, retryAfter: nil)
        case .refused(let refusal):
            return refusal
        }
    }

    /// Why a TSA stamping under `policy` would reject the DER `TimeStampReq` `request`, without signing anything;
    /// nil when it would grant it (budget, time and token permitting). For fuzzing and logs: `respond` does the same.
    public static func failureInfo(for request: [UInt8], policy: ASN1ObjectIdentifier) -> PKIFailureInfo? {
        do {
            _ = try Self.parse(request, policy: policy)
            return nil
        } catch {
            return error.failureInfo
        }
    }

    /// A request parsed and checked against `policy`.
    static func parse(_ request: [UInt8], policy: ASN1ObjectIdentifier) throws(TimeStampRequest.Rejection) -> TimeStampRequest {
        let parsed = try TimeStampRequest(derEncoded: request)
        if let requested = parsed.policy, requested != policy {
            throw TimeStampRequest.Rejection(failureInfo: .unacceptedPolicy, reason: "unsupported policy (this TSA stamps under \(policy))")
        }
        return parsed
    }

    /// What `stamp` made.
    enum Stamp {
        case granted(token: [UInt8])
        case refused(Reply)
    }

    /// A time-stamp token for `request` now, or the rejection to send.
    func stamp(_ request: TimeStampRequest) async -> Stamp {
        let now = self.clock.now()
        guard now >= self.certificate.notValidBefore, now < self.certificate.notValidAfter else {
            return .refused(Self.rejection(.timeNotAvailable, "the TSA certificate is not valid at this time"))
        }
        if let wait = self.budget.take(now: now) {
            return .refused(Reply(
                der: Self.rejectionResponse(.systemFailure, "busy"), granted: false, busy: true, failureInfo: .systemFailure, retryAfter: wait))
        }
        do {
            let tstInfo = try self.writer.tstInfo(
                request: request, policy: self.settings.policy, serialNumberDER: TimeStampTokenWriter.randomSerialNumber(), genTime: now,
                accuracy: self.settings.accuracy, includeTSAName: self.settings.includeTSAName)
            return .granted(token: try await self.writer.sign(tstInfo: tstInfo, includeCertificates: request.certReq))
        } catch {
            return .refused(Self.rejection(.systemFailure, "the time-stamp could not be signed"))
        }
    }

    // MARK: CSC v2 signatures/timestamp

    /// A `TimeStampToken` (DER `ContentInfo` of the `SignedData`) over `hash`, with the TSA certificate and chain.
    ///
    /// - Parameters:
    ///   - hash: the hash of the data to stamp, computed with `hashAlgorithmOID`.
    ///   - hashAlgorithmOID: SHA-256, SHA-384 or SHA-512, dotted (`2.16.840.1.101.3.4.2.1`).
    ///   - nonce: 1 to 64 arbitrary octets, read as a big-endian unsigned number and written as a positive INTEGER
    ///     (leading zero octets dropped); nil for none.
    /// - Throws: `SigilloError.invalidRequest` for an unsupported algorithm, a hash of the wrong length or a bad nonce;
    ///   `SigilloError.tokenUnavailable` when the signing budget is spent ("busy"), the TSA certificate is not valid
    ///   now, or the token fails.
    public func timeStampToken(hash: [UInt8], hashAlgorithmOID: String, nonce: [UInt8]?) async throws -> [UInt8] {
        guard let oid = try? ASN1ObjectIdentifier(dotRepresentation: hashAlgorithmOID), let algorithm = TimeStampOID.hashAlgorithm(oid) else {
            throw SigilloError(.invalidRequest, "unsupported hash algorithm '\(hashAlgorithmOID)' (SHA-256, SHA-384 or SHA-512)")
        }
        guard hash.count == algorithm.digestLength else {
            throw SigilloError(.invalidRequest, "a \(algorithm.rawValue) hash is \(algorithm.digestLength) octets, not \(hash.count)")
        }
        var nonceDER: [UInt8]?
        if let nonce {
            guard (1...TimeStampRequest.maxNonceLength).contains(nonce.count) else {
                throw SigilloError(.invalidRequest, "the nonce must be 1 to \(TimeStampRequest.maxNonceLength) octets")
            }
            nonceDER = Self.positiveInteger(nonce)
        }
        let request = try TimeStampRequest(hashAlgorithm: algorithm, hashedMessage: hash, nonceDER: nonceDER, certReq: true)
        switch await self.stamp(request) {
        case .granted(let token):
            return token
        case .refused(let refusal) where refusal.busy:
            throw SigilloError(.tokenUnavailable, "the time-stamping authority is busy: try again in \(refusal.retryAfter ?? 1) s")
        case .refused(let refusal) where refusal.failureInfo == .timeNotAvailable:
            throw SigilloError(.tokenUnavailable, "the time-stamping authority cannot stamp now: its certificate is not valid at this time")
        case .refused:
            throw SigilloError(.tokenUnavailable, "the time-stamping authority could not sign: try again later")
        }
    }

    /// `bytes` as a big-endian unsigned number, DER INTEGER (tag included): minimal, positive.
    static func positiveInteger(_ bytes: [UInt8]) -> [UInt8] {
        var magnitude = Array(bytes.drop { $0 == 0 })
        if magnitude.isEmpty { magnitude = [0] }
        if magnitude[0] & 0x80 != 0 { magnitude.insert(0, at: 0) }
        // At most 65 octets: a short-form length.
        return [0x02, UInt8(magnitude.count)] + magnitude
    }

    // MARK: TimeStampResp

    /// ```
    /// TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken TimeStampToken OPTIONAL }
    /// PKIStatusInfo ::= SEQUENCE { status PKIStatus, statusString PKIFreeText OPTIONAL, failInfo PKIFailureInfo OPTIONAL }
    /// PKIFreeText ::= SEQUENCE SIZE (1..MAX) OF UTF8String
    /// ```
    static func grantedResponse(_ token: [UInt8]) -> [UInt8] {
        var serializer = DER.Serializer()
        serializer.appendConstructedNode(identifier: .sequence) { coder in
            coder.appendConstructedNode(identifier: .sequence) { coder in
                coder.serializeRawBytes([0x02, 0x01, 0x00])  // granted
            }
            coder.serializeRawBytes(token)
        }
        return serializer.serializedBytes
    }

    /// A `TimeStampResp` with status rejection (2), `text` and `failureInfo`, and no token.
    static func rejectionResponse(_ failureInfo: PKIFailureInfo, _ text: String) -> [UInt8] {
        var serializer = DER.Serializer()
        serializer.appendConstructedNode(identifier: .sequence) { coder in
            coder.appendConstructedNode(identifier: .sequence) { coder in
                coder.serializeRawBytes([0x02, 0x01, 0x02])  // rejection
                coder.appendConstructedNode(identifier: .sequence) { coder in
                    try? coder.serialize(ASN1UTF8String(text))
                }
                coder.serializeRawBytes(failureInfo.derEncoded)
            }
        }
        return serializer.serializedBytes
    }

    static func rejection(_ failureInfo: PKIFailureInfo, _ text: String) -> Reply {
        Reply(der: Self.rejectionResponse(failureInfo, text), granted: false, busy: false, failureInfo: failureInfo, retryAfter: nil)
    }
}
