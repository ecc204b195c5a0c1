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

    func addRoutes(to router: Router<SigilloContext>) {
        for version in [1, 2] {
            let open = router.group("csc/v\(version)")
            open.post("info") { request, context in try await self.handle(version, request, context) { _ in try self.info(version: version) } }
            open.post("auth/login") { request, context in try await self.handle(version, request, context) { _ in try await self.login(request) } }
            // Everything else needs a bearer token: the authenticator puts its holder on the context.
            let holder = router.group("csc/v\(version)")
                .add(middleware: BearerAuthenticator(authentication: self.authentication))
                .group(context: HolderContext.self)
            holder.post("auth/revoke") { request, context in try await self.handle(version, request, context) { body in try await self.revoke(context.identity, body) } }
            holder.post("credentials/list") { request, context in try await self.handle(version, request, context) { _ in try await self.list(context.identity) } }
            holder.post("credentials/info") { request, context in try await self.handle(version, request, context) { body in try await self.credentialInfo(context.identity, body) } }
            holder.post("credentials/authorize") { request, context in try await self.handle(version, request, context) { body in try await self.authorize(context.identity, body) } }
            holder.post("credentials/sendOTP") { request, context in try await self.handle(version, request, context) { body in try await self.sendOTP(context.identity, body) } }
            holder.post("credentials/extendTransaction") { request, context in try await self.handle(version, request, context) { body in try await self.extend(context.identity, body) } }
            holder.post("signatures/signHash") { request, context in try await self.handle(version, request, context) { body in try await self.signHash(context.identity, body) } }
            if version == 2, let tsa = self.timeStamps {
                holder.post("signatures/timestamp") { request, context in try await self.handle(version, request, context) { body in try await self.timestamp(tsa, body) } }
            }
        }
    }

    /// Decodes the body (an empty body is `{}`), runs the handler, renders errors in the version's shape.
    private func handle(_ version: Int, _ request: Request, _ context: some RequestContext, _ body: (CSCRequest) async throws -> Response) async throws -> Response {
        // Too large a body ends in JSONErrorMiddleware as 413.
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        let decoded: CSCRequest
        do {
            let data = buffer.readableBytes == 0 ? Data("{}".utf8) : Data(buffer: buffer)
            decoded = try JSONDecoder().decode(CSCRequest.self, from: data)
        } catch let error as CSCRequestError {
            throw CSCError.invalidRequest(error.description)
        } catch {
            throw CSCError.invalidRequest("The request body is not valid JSON for this method")
        }
        do {
            return try await body(decoded)
        } catch let error as SigilloError {
            throw CSCError.from(error, version: version)
        } catch let error as CSCRequestError {
            throw CSCError.invalidRequest(error.description)
        }
    }

    // MARK: Methods

    private func info(version: Int) throws -> Response {
        var methods = ["auth/login", "auth/revoke", "credentials/list", "credentials/info", "credentials/authorize",
                       "credentials/sendOTP", "credentials/extendTransaction", "signatures/signHash"]
        if version == 2, self.timeStamps != nil { methods.append("signatures/timestamp") }
        let algorithms = [OID.ecdsaSHA256, OID.ecdsaSHA384, OID.ecdsaSHA512, OID.rsaEncryption, OID.sha256WithRSA, OID.sha384WithRSA, OID.sha512WithRSA, OID.rsaPSS]
        return try JSONResponse.make(CSCInfoResponse(
            specs: version == 1 ? "1.0.4.0" : "2.0.0.0", name: self.name, logo: "", region: "IT", lang: "en-US",
            description: "Sigillo remote signature service", authType: ["basic"], methods: methods,
            signAlgorithms: version == 2 ? .init(algos: algorithms) : nil))
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

    private func list(_ identity: BearerIdentity) async throws -> Response {
        let holderID = identity.holderID
        let credentials = try await self.authorization.credentials(holderID: holderID)
        return try JSONResponse.make(CSCListResponse(credentialIDs: credentials.map(\.id)))
    }

    private func credentialInfo(_ identity: BearerIdentity, _ body: CSCRequest) async throws -> Response {
        let holderID = identity.holderID
        let id = try body.requireCredentialID()
        let credential = try await self.authorization.credential(id, holderID: holderID)
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
        if body.authInfo != false {
            let kind = try await self.authorization.otpKind(holderID: holderID)
            info.PIN = .init(presence: "true", format: "A", label: "Password", description: "The holder's password")
            info.OTP = .init(presence: "true", type: kind == .sms ? "online" : "offline", format: "N", label: "OTP",
                             description: kind == .sms ? "Code sent by SMS" : "Code from the holder's OTP device", ID: kind?.rawValue ?? "totp")
        }
        return try JSONResponse.make(info)
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

    private func signHash(_ identity: BearerIdentity, _ body: CSCRequest) async throws -> Response {
        let holderID = identity.holderID
        let id = try body.requireCredentialID()
        guard let sad = body.SAD, !sad.isEmpty else { throw CSCError.invalidRequest("Missing (or invalid type) string parameter SAD") }
        let digests = try body.digests()
        guard let signAlgo = body.signAlgo else { throw CSCError.invalidRequest("Missing (or invalid type) string parameter signAlgo") }
        let mechanism = try OID.mechanism(signAlgo: signAlgo, hashAlgo: body.hashAlgorithmOID ?? body.hashAlgo, signAlgoParams: body.signAlgoParams,
                                          digestLength: digests[0].count)
        guard digests.allSatisfy({ $0.count == mechanism.hash.digestLength }) else {
            throw CSCError.invalidRequest("Invalid hash length: \(mechanism.hash.rawValue) digests are \(mechanism.hash.digestLength) bytes")
        }
        let signatures = try await self.signing.signHash(holderID: holderID, credentialID: id, sad: sad, hashes: digests, mechanism: mechanism,
                                                         accessToken: identity.checked ? nil : identity.accessToken)
        return JSONResponse.signatures(signatures)
    }

    /// v2 `signatures/timestamp`: an RFC 3161 time-stamp token over one digest, for any holder with an access token
    /// (the digest is usually of a signature value: a CAdES/PAdES signature-time-stamp).
    private func timestamp(_ tsa: TimeStampAuthority, _ body: CSCRequest) async throws -> Response {
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
