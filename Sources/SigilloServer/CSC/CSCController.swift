import Foundation
import Hummingbird
import NIOCore
import PKCS11
import CSCProtocol
import SigilloDomain
import SigilloPKI
import X509

/// The Cloud Signature Consortium API, v1 (`/csc/v1/...`) and v2 (`/csc/v2/...`).
struct CSCController: Sendable {
    let authentication: Authentication
    let authorization: Authorization
    let signing: Signing
    /// The CA certificate, then the certificates above it up to the root, DER (`certificates: "chain"`).
    let caChainDER: [[UInt8]]
    let clock: ServiceClock
    let name: String
    /// The time-stamping authority behind v2 `signatures/timestamp`; nil: the method is not offered.
    var timeStamps: TimeStampAuthority? = nil
    /// Counts the signatures made, by algorithm.
    var metrics: SigilloMetrics? = nil
    /// The OAuth2 authorization server's issuer (its base URI), listed by `info`.
    var oauth2Issuer: String? = nil

    func addRoutes(to router: Router<SigilloContext>) {
        for version in [1, 2] {
            let open = router.group("csc/v\(version)")
            open.post("info") { request, context in try await self.handle(version, request, context) { _ in try self.info(version: version) } }
            open.post("auth/login") { request, context in try await self.handle(version, request, context) { _ in try await self.login(request) } }
            // Everything else needs a bearer token: the authenticator puts its holder on the context.
            let holder = router.group("csc/v\(version)")
                .add(middleware: BearerAuthenticator(authentication: self.authentication))
                .group(context: HolderContext.self)
            // An OAuth2 credential token signs and does nothing else: every other route wants an account token.
            holder.post("auth/revoke") { request, context in try await self.handle(version, request, context) { body in try await self.revoke(try Self.account(context.identity), body) } }
            holder.post("credentials/list") { request, context in try await self.handle(version, request, context) { body in try await self.list(try Self.account(context.identity), body, version: version) } }
            holder.post("credentials/info") { request, context in try await self.handle(version, request, context) { body in try await self.credentialInfo(try Self.account(context.identity), body, version: version) } }
            holder.post("credentials/authorize") { request, context in try await self.handle(version, request, context, counting: "credentials/authorize") { body in try await self.authorize(try Self.account(context.identity), body) } }
            holder.post("credentials/sendOTP") { request, context in try await self.handle(version, request, context) { body in try await self.sendOTP(try Self.account(context.identity), body) } }
            holder.post("credentials/extendTransaction") { request, context in try await self.handle(version, request, context) { body in try await self.extend(try Self.account(context.identity), body) } }
            holder.post("signatures/signHash") { request, context in try await self.handle(version, request, context, counting: "signatures/signHash") { body in try await self.signHash(context.identity, body) } }
            if version == 2, let tsa = self.timeStamps {
                holder.post("signatures/timestamp") { request, context in try await self.handle(version, request, context) { body in try await self.timestamp(tsa, try Self.account(context.identity), body) } }
            }
        }
    }

    /// Decodes the body (an empty body is `{}`), runs the handler, renders errors in the version's shape.
    ///
    /// - Parameter method: when given, each refusal is counted in `sigillo_refusals_total{method, reason}`, the reason
    ///   being the domain's code (`invalid_password` and `invalid_otp` apart, even where CSC v2 answers both as
    ///   `invalid_authentication_data`).
    private func handle(_ version: Int, _ request: Request, _ context: some RequestContext, counting method: String? = nil,
                        _ body: (CSCRequest) async throws -> Response) async throws -> Response {
        func refused(_ reason: String) {
            if let method { self.metrics?.refusal(method: method, reason: reason) }
        }
        // Too large a body ends in JSONErrorMiddleware as 413.
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        let decoded: CSCRequest
        do {
            let data = buffer.readableBytes == 0 ? Data("{}".utf8) : Data(buffer: buffer)
            decoded = try JSONDecoder().decode(CSCRequest.self, from: data)
        } catch let error as CSCRequestError {
            refused("invalid_request")
            throw CSCError.invalidRequest(error.description)
        } catch {
            refused("invalid_request")
            throw CSCError.invalidRequest("The request body is not valid JSON for this method")
        }
        do {
            return try await body(decoded)
        } catch let error as SigilloError {
            refused(error.code.rawValue)
            throw CSCError.from(error, version: version)
        } catch let error as CSCRequestError {
            refused("invalid_request")
            throw CSCError.invalidRequest(error.description)
        } catch let error as APIError {
            refused(error.code)
            throw error
        }
    }

    /// The identity of an account token (`auth/login`, OAuth2 `service`); a credential token gets 403 `insufficient_scope`.
    private static func account(_ identity: BearerIdentity) throws -> BearerIdentity {
        guard identity.credentialID == nil else {
            throw APIError(status: .forbidden, code: "insufficient_scope", description: "a credential-scoped access token only signs (signatures/signHash)")
        }
        return identity
    }

    // MARK: Methods

    private func info(version: Int) throws -> Response {
        var methods = ["auth/login", "auth/revoke", "credentials/list", "credentials/info", "credentials/authorize",
                       "credentials/sendOTP", "credentials/extendTransaction", "signatures/signHash"]
        if version == 2, self.timeStamps != nil { methods.append("signatures/timestamp") }
        if self.oauth2Issuer != nil { methods += ["oauth2/authorize", "oauth2/token", "oauth2/pushed_authorize", "oauth2/revoke"] }
        let algorithms = [OID.ecdsaSHA256, OID.ecdsaSHA384, OID.ecdsaSHA512, OID.rsaEncryption, OID.sha256WithRSA, OID.sha384WithRSA, OID.sha512WithRSA, OID.rsaPSS]
        return try JSONResponse.make(CSCInfoResponse(
            specs: version == 1 ? "1.0.4.0" : "2.0.0.0", name: self.name, logo: "", region: "IT", lang: "en-US",
            description: "Sigillo remote signature service", authType: self.oauth2Issuer == nil ? ["basic"] : ["basic", "oauth2code"], methods: methods,
            signAlgorithms: version == 2 ? .init(algos: algorithms) : nil, oauth2: self.oauth2Issuer,
            oauth2Issuer: version == 2 ? self.oauth2Issuer : nil, supportsRar: version == 2 && self.oauth2Issuer != nil ? true : nil))
    }

    private func login(_ request: Request) async throws -> Response {
        guard let basic = BasicCredentials(request.headers) else {
            throw APIError(status: .unauthorized, code: "invalid_request", description: "HTTP Basic authentication (username:password) is required")
        }
        do {
            let login = try await self.authentication.issueAccessToken(username: basic.username, password: basic.password)
            return try JSONResponse.make(CSCLoginResponse(accessToken: login.token, expiresIn: login.expiresIn))
        } catch let error as SigilloError where error.code == .invalidPassword {
            throw APIError(status: .unauthorized, code: "authentication_error", description: "Invalid username or password")
        }
    }

    private func revoke(_ identity: BearerIdentity, _ body: CSCRequest) async throws -> Response {
        try await self.authentication.revokeAccessToken(body.token ?? identity.accessToken)
        return Response(status: .noContent)
    }

    private func list(_ identity: BearerIdentity, _ body: CSCRequest, version: Int) async throws -> Response {
        var credentials = try await self.authorization.credentials(holderID: identity.holderID)
        guard version == 2 else { return try JSONResponse.make(CSCListResponse(credentialIDs: credentials.map(\.id))) }
        let now = self.clock.now()
        if body.onlyValid == true {
            credentials = credentials.filter { $0.status == .active && now >= $0.notBefore && now < $0.notAfter }
        }
        var infos: [CSCCredentialInfoResponse]?
        if body.credentialInfo == true {
            let kind = try await self.authorization.otpKind(holderID: identity.holderID)
            infos = try credentials.map { credential in
                var info = try self.info(credential, body, version: version, otpKind: kind)
                info.credentialID = credential.id
                return info
            }
        }
        return try JSONResponse.make(CSCListResponse(credentialIDs: credentials.map(\.id), credentialInfos: infos, onlyValid: body.onlyValid == true ? true : nil))
    }

    private func credentialInfo(_ identity: BearerIdentity, _ body: CSCRequest, version: Int) async throws -> Response {
        let credential = try await self.authorization.credential(try body.requireCredentialID(), holderID: identity.holderID)
        let kind = body.authInfo != false ? try await self.authorization.otpKind(holderID: identity.holderID) : nil
        return try JSONResponse.make(try self.info(credential, body, version: version, otpKind: kind))
    }

    /// A credential as `credentials/info` (and v2 `credentials/list` with `credentialInfo`) describes it. v2 adds `auth`
    /// (mode `explicit`: password and OTP in `authData`; wallets use the OAuth2 `credential` scope instead).
    private func info(_ credential: Credential, _ body: CSCRequest, version: Int, otpKind kind: OTPKind?) throws -> CSCCredentialInfoResponse {
        let certificate = try Certificate(derEncoded: credential.certificateDER)
        let now = self.clock.now()
        let certStatus: String
        switch credential.status {
        case .revoked: certStatus = "revoked"
        case .suspended: certStatus = "suspended"
        case .active: certStatus = now >= credential.notAfter ? "expired" : (now < credential.notBefore ? "invalid" : "valid")
        }
        var cert = CSCCredentialInfoResponse.Cert(status: certStatus)
        switch body.certificates ?? "single" {
        case "none": break
        case "chain": cert.certificates = ([credential.certificateDER] + self.caChainDER).map { Base64Text.encode($0) }
        case "single": cert.certificates = [Base64Text.encode(credential.certificateDER)]
        default: throw CSCError.invalidRequest("Invalid parameter certificates")
        }
        if body.certInfo == true {
            cert.issuerDN = certificate.issuer.description
            cert.subjectDN = certificate.subject.description
            cert.serialNumber = credential.serialNumber
            cert.validFrom = Self.generalizedTime(credential.notBefore)
            cert.validTo = Self.generalizedTime(credential.notAfter)
        }
        let key = CSCCredentialInfoResponse.Key(
            status: credential.status == .active ? "enabled" : "disabled", algo: OID.keyAlgorithms(credential.keyAlgorithm), len: credential.keyAlgorithm.bits,
            curve: credential.keyAlgorithm.isRSA ? nil : (credential.keyAlgorithm == .ecP256 ? OID.p256 : OID.p384))
        var info = CSCCredentialInfoResponse(
            description: "Qualified signature credential", key: key, cert: cert, authMode: "explicit", SCAL: "2", multisign: credential.multisign, lang: "en-US")
        if version == 2 { info.auth = .init(mode: "explicit") }
        if body.authInfo != false {
            info.PIN = .init(presence: "true", format: "A", label: "Password", description: "The holder's password")
            info.OTP = .init(presence: "true", type: kind == .sms ? "online" : "offline", format: "N", label: "OTP",
                             description: kind == .sms ? "Code sent by SMS" : "Code from the holder's OTP device", ID: kind?.rawValue ?? "totp")
            if version == 2 {
                info.auth = .init(mode: "explicit", expression: "PIN AND OTP", objects: [
                    .init(type: "Password", id: "PIN", format: "A", label: "Password", description: "The holder's password"),
                    .init(type: "Password", id: "OTP", format: "N", label: "OTP", description: kind == .sms ? "Code sent by SMS" : "Code from the holder's OTP device",
                          generator: kind?.rawValue ?? "totp"),
                ])
            }
        }
        return info
    }

    private func authorize(_ identity: BearerIdentity, _ body: CSCRequest) async throws -> Response {
        let holderID = identity.holderID
        let id = try body.requireCredentialID()
        let digests = try body.digests()
        guard let numSignatures = body.numSignatures else { throw CSCError.invalidRequest("Missing (or invalid type) integer parameter numSignatures") }
        let hashAlgorithm: HashAlgorithm
        if let oid = body.hashAlgorithmOID ?? body.hashAlgo {
            guard let hash = OID.hash(oid) else { throw CSCError.invalidRequest("Invalid parameter hashAlgorithmOID") }
            hashAlgorithm = hash
        } else {
            guard let hash = HashAlgorithm(digestLength: digests[0].count) else { throw CSCError.invalidRequest("Invalid hash length") }
            hashAlgorithm = hash
        }
        let (pin, otp) = body.credentials()
        guard let pin, !pin.isEmpty else { throw CSCError.invalidRequest("Missing (or invalid type) string parameter PIN") }
        guard let otp, !otp.isEmpty else { throw CSCError.invalidRequest("Missing (or invalid type) string parameter OTP") }
        let authorization = try await self.authorization.authorize(
            holderID: holderID, credentialID: id, numSignatures: numSignatures, hashes: digests, hashAlgorithm: hashAlgorithm, password: pin, otp: otp)
        return try JSONResponse.make(CSCAuthorizeResponse(SAD: authorization.sad, expiresIn: authorization.expiresIn))
    }

    private func sendOTP(_ identity: BearerIdentity, _ body: CSCRequest) async throws -> Response {
        let holderID = identity.holderID
        try await self.authorization.sendOTP(holderID: holderID, credentialID: try body.requireCredentialID())
        return Response(status: .noContent)
    }

    private func extend(_ identity: BearerIdentity, _ body: CSCRequest) async throws -> Response {
        let holderID = identity.holderID
        guard let sad = body.SAD else { throw CSCError.invalidRequest("Missing (or invalid type) string parameter SAD") }
        let authorization = try await self.authorization.extendTransaction(holderID: holderID, credentialID: try body.requireCredentialID(), sad: sad)
        return try JSONResponse.make(CSCAuthorizeResponse(SAD: authorization.sad, expiresIn: authorization.expiresIn))
    }

    /// With an account token the body carries the SAD of `credentials/authorize`; an OAuth2 credential token is itself the
    /// SAD (the body has none) and signs only its credential's authorized digests.
    private func signHash(_ identity: BearerIdentity, _ body: CSCRequest) async throws -> Response {
        let holderID = identity.holderID
        let id = try body.requireCredentialID()
        let sad: String
        if identity.credentialID != nil {
            guard body.SAD == nil else { throw CSCError.invalidRequest("Invalid parameter SAD: the credential-scoped access token is the SAD") }
            sad = identity.accessToken
        } else {
            guard let given = body.SAD, !given.isEmpty else {
                throw CSCError.invalidRequest("Missing (or invalid type) string parameter SAD (an account access token does not authorize signatures)")
            }
            sad = given
        }
        let digests = try body.digests()
        guard let signAlgo = body.signAlgo else { throw CSCError.invalidRequest("Missing (or invalid type) string parameter signAlgo") }
        let mechanism = try OID.mechanism(signAlgo: signAlgo, hashAlgo: body.hashAlgorithmOID ?? body.hashAlgo, signAlgoParams: body.signAlgoParams,
                                          digestLength: digests[0].count)
        guard digests.allSatisfy({ $0.count == mechanism.hash.digestLength }) else {
            throw CSCError.invalidRequest("Invalid hash length: \(mechanism.hash.rawValue) digests are \(mechanism.hash.digestLength) bytes")
        }
        let signatures = try await self.signing.signHash(holderID: holderID, credentialID: id, sad: sad, hashes: digests, mechanism: mechanism,
                                                         credentialToken: identity.credentialID != nil, accessToken: identity.checked ? nil : identity.accessToken)
        self.metrics?.signatures(algorithm: signAlgo, count: signatures.count)
        return JSONResponse.signatures(signatures)
    }

    /// v2 `signatures/timestamp`: an RFC 3161 time-stamp token over one digest, for any holder with an access token
    /// (the digest is usually of a signature value: a CAdES/PAdES signature-time-stamp).
    private func timestamp(_ tsa: TimeStampAuthority, _: BearerIdentity, _ body: CSCRequest) async throws -> Response {
        let digests = try body.digests()
        guard digests.count == 1, let digest = digests.first else { throw CSCError.invalidRequest("Invalid parameter hash: one digest, base64") }
        guard let oid = body.hashAlgo ?? body.hashAlgorithmOID else { throw CSCError.invalidRequest("Missing (or invalid type) string parameter hashAlgo") }
        var nonce: [UInt8]?
        if let text = body.nonce {
            guard let bytes = Hex.bytes(text), (1...32).contains(bytes.count) else {
                throw CSCError.invalidRequest("Invalid parameter nonce: 1 to 32 bytes as hex digits")
            }
            nonce = bytes
        }
        let token = try await tsa.timeStampToken(hash: digest, hashAlgorithmOID: oid, nonce: nonce)
        return try JSONResponse.make(CSCTimestampResponse(timestamp: Base64Text.encode(token)))
    }

    // MARK: Helpers

    /// `YYYYMMDDHHMMSSZ`, the CSC date format.
    static func generalizedTime(_ date: Date) -> String {
        DateText.utc(date, format: "yyyyMMddHHmmss'Z'")
    }
}
