import Foundation
import Hummingbird
import NIOCore
import PKCS11
import CSCProtocol
import SigilloDomain
import X509

/// The Cloud Signature Consortium API, v1 (`/csc/v1/...`) and v2 (`/csc/v2/...`).
struct CSCController: Sendable {
    let authentication: Authentication
    let authorization: Authorization
    let signing: Signing
    /// The CA certificate, DER (`certificates: "chain"`).
    let caCertificateDER: [UInt8]
    let clock: ServiceClock
    let name: String

    func addRoutes(to router: Router<SigilloContext>) {
        for version in [1, 2] {
            let open = router.group("csc/v\(version)")
            open.post("info") { request, context in try await self.handle(version, request, context) { _ in self.info(version: version) } }
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
        } catch let error as APIError {
            throw error
        } catch {
            throw CSCError.invalidRequest("The request body is not valid JSON for this method")
        }
        do {
            return try await body(decoded)
        } catch let error as SigilloError {
            throw CSCError.from(error, version: version)
        }
    }

    // MARK: Methods

    private func info(version: Int) -> Response {
        var info: [String: JSONValue] = [
            "specs": .string(version == 1 ? "1.0.4.0" : "2.0.0.0"),
            "name": .string(self.name),
            "logo": .string(""),
            "region": .string("IT"),
            "lang": .string("en-US"),
            "description": .string("Sigillo remote signature service"),
            "authType": .array([.string("basic")]),
            "methods": .array(["auth/login", "auth/revoke", "credentials/list", "credentials/info", "credentials/authorize",
                               "credentials/sendOTP", "credentials/extendTransaction", "signatures/signHash"].map { .string($0) }),
        ]
        if version == 2 {
            info["signAlgorithms"] = .object(["algos": .array([OID.ecdsaSHA256, OID.ecdsaSHA384, OID.ecdsaSHA512, OID.rsaEncryption,
                                                               OID.sha256WithRSA, OID.sha384WithRSA, OID.sha512WithRSA, OID.rsaPSS].map { .string($0) })])
        }
        return Self.json(.object(info))
    }

    private func login(_ request: Request) async throws -> Response {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("basic "),
              let decoded = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else {
            throw APIError(status: .unauthorized, code: "invalid_request", description: "HTTP Basic authentication (username:password) is required")
        }
        do {
            let login = try await self.authentication.issueAccessToken(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
            return Self.json(.object(["access_token": .string(login.token), "token_type": .string("Bearer"), "expires_in": .number(login.expiresIn)]))
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
        return Self.json(.object(["credentialIDs": .array(credentials.map { .string($0.id) })]))
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
        var cert: [String: JSONValue] = ["status": .string(certStatus)]
        switch body.certificates ?? "single" {
        case "none": break
        case "chain": cert["certificates"] = .array([.string(Base64Text.encode(credential.certificateDER)), .string(Base64Text.encode(self.caCertificateDER))])
        case "single": cert["certificates"] = .array([.string(Base64Text.encode(credential.certificateDER))])
        default: throw CSCError.invalidRequest("Invalid parameter certificates")
        }
        if body.certInfo == true {
            cert["issuerDN"] = .string(certificate.issuer.description)
            cert["subjectDN"] = .string(certificate.subject.description)
            cert["serialNumber"] = .string(credential.serialNumber)
            cert["validFrom"] = .string(Self.generalizedTime(credential.notBefore))
            cert["validTo"] = .string(Self.generalizedTime(credential.notAfter))
        }
        var key: [String: JSONValue] = [
            "status": .string(credential.status == .active ? "enabled" : "disabled"),
            "algo": .array(OID.keyAlgorithms(credential.keyAlgorithm).map { .string($0) }),
            "len": .number(credential.keyAlgorithm.bits),
        ]
        if !credential.keyAlgorithm.isRSA {
            key["curve"] = .string(credential.keyAlgorithm == .ecP256 ? OID.p256 : OID.p384)
        }
        var info: [String: JSONValue] = [
            "description": .string("Qualified signature credential"),
            "key": .object(key),
            "cert": .object(cert),
            "authMode": .string("explicit"),
            "SCAL": .string("2"),
            "multisign": .number(credential.multisign),
            "lang": .string("en-US"),
        ]
        if body.authInfo != false {
            let kind = try await self.authorization.otpKind(holderID: holderID)
            info["PIN"] = .object(["presence": .string("true"), "format": .string("A"), "label": .string("Password"), "description": .string("The holder's password")])
            info["OTP"] = .object([
                "presence": .string("true"), "type": .string(kind == .sms ? "online" : "offline"), "format": .string("N"),
                "label": .string("OTP"), "description": .string(kind == .sms ? "Code sent by SMS" : "Code from the holder's OTP device"),
                "ID": .string(kind?.rawValue ?? "totp"),
            ])
        }
        return Self.json(.object(info))
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
        return Self.json(.object(["SAD": .string(authorization.sad), "expiresIn": .number(authorization.expiresIn)]))
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
        return Self.json(.object(["SAD": .string(authorization.sad), "expiresIn": .number(authorization.expiresIn)]))
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
        let signatures = try await self.signing.signHash(holderID: holderID, credentialID: id, sad: sad, hashes: digests, mechanism: mechanism)
        return Self.json(.object(["signatures": .array(signatures.map { .string(Base64Text.encode($0)) })]))
    }

    // MARK: Helpers

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: value.serialized())))
    }

    /// `YYYYMMDDHHMMSSZ`, the CSC date format.
    static func generalizedTime(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMddHHmmss'Z'"
        return formatter.string(from: date)
    }
}

/// A small JSON tree, so responses keep exactly the field names and types CSC clients expect.
indirect enum JSONValue: Sendable {
    case string(String)
    case number(Int)
    case bool(Bool)
    case array([JSONValue])
    case object([String: JSONValue])

    /// UTF-8 JSON, keys sorted, slashes not escaped (written directly: signHash answers are on the hot path).
    func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        self.write(to: &out)
        return out
    }

    private func write(to out: inout [UInt8]) {
        switch self {
        case .string(let value):
            Self.write(string: value, to: &out)
        case .number(let value):
            out.append(contentsOf: String(value).utf8)
        case .bool(let value):
            out.append(contentsOf: (value ? "true" : "false").utf8)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let values):
            out.append(UInt8(ascii: "{"))
            for (index, key) in values.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                Self.write(string: key, to: &out)
                out.append(UInt8(ascii: ":"))
                values[key]!.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string: quote, backslash and control characters escaped, everything else as UTF-8.
    private static func write(string: String, to out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x00..<0x20: out.append(contentsOf: Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
