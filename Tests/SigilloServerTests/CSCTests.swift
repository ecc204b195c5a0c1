import Crypto
import _CryptoExtras
import Foundation
import PKCS11
import CSCClient
import CSCProtocol
import SigilloDomain
import SigilloMail
import SigilloCMS
import SigilloPKI
import SigilloSQLite
import SigilloTestSupport
import Testing
import X509

@Suite("CSC API over TLS")
struct CSCTests {
    @Test("info answers on v1 and v2 without a token")
    func info() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let v1 = try await server.post("/csc/v1/info")
            #expect(v1.status == 200)
            #expect(v1.json["specs"] as? String == "1.0.4.0")
            #expect((v1.json["methods"] as? [String])?.contains("signatures/signHash") == true)
            let v2 = try await server.post("/csc/v2/info")
            #expect(v2.json["specs"] as? String == "2.0.0.0")
        }
    }

    @Test("v1 flow: login, list, info, authorize, signHash; signatures verify with the certificate", arguments: HolderKeyStorage.allCases)
    func v1Flow(holderKeys: HolderKeyStorage) async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture, holderKeys: holderKeys) { server in
            var account = try await server.activate()
            let login = try await server.post("/csc/v1/auth/login", basic: (account.username, account.password))
            #expect(login.status == 200)
            let token = try #require(login.json["access_token"] as? String)
            #expect(login.json["expires_in"] as? Int == 1800)
            let list = try await server.post("/csc/v1/credentials/list", bearer: token)
            #expect(list.json["credentialIDs"] as? [String] == [account.credential.id])
            let info = try await server.post("/csc/v1/credentials/info", ["credentialID": account.credential.id, "certificates": "chain", "certInfo": true, "authInfo": true], bearer: token)
            #expect(info.status == 200)
            let key = try #require(info.json["key"] as? [String: Any])
            #expect((key["algo"] as? [String])?.contains("1.2.840.10045.4.3.2") == true)
            #expect(key["status"] as? String == "enabled")
            let cert = try #require(info.json["cert"] as? [String: Any])
            #expect(cert["status"] as? String == "valid")
            #expect((cert["certificates"] as? [String])?.count == 2)
            #expect((cert["subjectDN"] as? String)?.contains("TINIT-\(account.holder.fiscalCode)") == true)
            #expect(info.json["SCAL"] as? String == "2")
            #expect(info.json["multisign"] as? Int == 100)
            #expect((info.json["OTP"] as? [String: Any])?["presence"] as? String == "true")

            let messages = ["contract", "annex", "letter"].map { Data($0.utf8) }
            let digests = messages.map { Array(SHA256.hash(data: $0)) }
            // Hashes as base64url without padding: compared as bytes.
            let authorize = try await server.post("/csc/v1/credentials/authorize", [
                "credentialID": account.credential.id, "numSignatures": 3, "hash": digests.map(b64url), "PIN": account.password, "OTP": account.nextOTP(),
            ], bearer: token)
            #expect(authorize.status == 200, "\(authorize.json)")
            let sad = try #require(authorize.json["SAD"] as? String)
            #expect(authorize.json["expiresIn"] as? Int == 300)
            let signed = try await server.post("/csc/v1/signatures/signHash", [
                "credentialID": account.credential.id, "SAD": sad, "hash": digests.map(b64), "hashAlgo": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.10045.4.3.2",
            ], bearer: token)
            #expect(signed.status == 200, "\(signed.json)")
            let signatures = try #require(signed.json["signatures"] as? [String])
            let publicKey = try #require(P256.Signing.PublicKey(try Certificate(derEncoded: account.credential.certificateDER).publicKey))
            for (message, signature) in zip(messages, signatures) {
                let der = try #require(Data(base64Encoded: signature))
                #expect(publicKey.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: der), for: SHA256.hash(data: message)))
            }
            // The SAD is spent.
            let again = try await server.post("/csc/v1/signatures/signHash", [
                "credentialID": account.credential.id, "SAD": sad, "hash": [b64(digests[0])], "signAlgo": "1.2.840.10045.4.3.2",
            ], bearer: token)
            #expect(again.status == 400)
            #expect(again.error == "invalid_request")
            // Revoked tokens stop working.
            #expect(try await server.post("/csc/v1/auth/revoke", bearer: token).status == 204)
            let afterRevoke = try await server.post("/csc/v1/credentials/list", bearer: token)
            #expect(afterRevoke.status == 401)
            #expect(afterRevoke.error == "invalid_token")
        }
    }

    @Test("v2 flow with an RSA key: hashes + hashAlgorithmOID + authData; rsaEncryption with and without hashAlgo", arguments: HolderKeyStorage.allCases)
    func v2FlowRSA(holderKeys: HolderKeyStorage) async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture, holderKeys: holderKeys) { server in
            var account = try await server.activate(name: "Rita", keyAlgorithm: .rsa2048)
            let token = try #require(try await server.post("/csc/v2/auth/login", basic: (account.username, account.password)).json["access_token"] as? String)
            let info = try await server.post("/csc/v2/credentials/info", ["credentialID": account.credential.id], bearer: token)
            let algos = (info.json["key"] as? [String: Any])?["algo"] as? [String] ?? []
            #expect(algos.contains("1.2.840.113549.1.1.1") && algos.contains("1.2.840.113549.1.1.11"))
            let messages = (0..<6).map { Data("rsa \($0)".utf8) }
            let digests = messages.map { Array(SHA256.hash(data: $0)) }
            let authorize = try await server.post("/csc/v2/credentials/authorize", [
                "credentialID": account.credential.id, "numSignatures": "6", "hashes": digests.map(b64), "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
                "authData": [["id": "PIN", "value": account.password], ["id": "OTP", "value": account.nextOTP()]],
            ], bearer: token)
            #expect(authorize.status == 200, "\(authorize.json)")
            let sad = try #require(authorize.json["SAD"] as? String)
            let key = try _RSA.Signing.PublicKey(derRepresentation: try await HolderKeyProbe.publicKey(account.credential, token: fixture.token))
            for (index, (signAlgo, hashAlgo)) in [("1.2.840.113549.1.1.1", nil), ("1.2.840.113549.1.1.1", "2.16.840.1.101.3.4.2.1"), ("1.2.840.113549.1.1.11", nil)].enumerated() {
                var body: [String: Any] = ["credentialID": account.credential.id, "SAD": sad, "hashes": [b64(digests[index])], "signAlgo": signAlgo]
                if let hashAlgo { body["hashAlgorithmOID"] = hashAlgo }
                let signed = try await server.post("/csc/v2/signatures/signHash", body, bearer: token)
                #expect(signed.status == 200, "\(signed.json)")
                let signature = try #require((signed.json["signatures"] as? [String])?.first.flatMap { Data(base64Encoded: $0) })
                #expect(key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: messages[index]), padding: .insecurePKCS1v1_5))
            }
            // RSA-PSS.
            let pss = try await server.post("/csc/v2/signatures/signHash", ["credentialID": account.credential.id, "SAD": sad, "hashes": [b64(digests[3])], "signAlgo": "1.2.840.113549.1.1.10", "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1"], bearer: token)
            let pssSignature = try #require((pss.json["signatures"] as? [String])?.first.flatMap { Data(base64Encoded: $0) })
            #expect(key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: pssSignature), for: SHA256.hash(data: messages[3]), padding: .PSS))
            // RSA-PSS with signAlgoParams (RSASSA-PSS-params DER): SHA-256, MGF1-SHA-256, salt 32 is what the token makes.
            let sha256AlgorithmID = "300d06096086480165030402010500"
            let params = { (salt: String) in
                Data(Hex.bytes("3034a00f" + sha256AlgorithmID + "a11c301a06092a864886f70d010108" + sha256AlgorithmID + "a2030201" + salt)!).base64EncodedString()
            }
            let withParams = try await server.post("/csc/v2/signatures/signHash", ["credentialID": account.credential.id, "SAD": sad, "hashes": [b64(digests[4])],
                                                                                  "signAlgo": "1.2.840.113549.1.1.10", "signAlgoParams": params("20")], bearer: token)
            #expect(withParams.status == 200, "\(withParams.json)")
            let paramsSignature = try #require((withParams.json["signatures"] as? [String])?.first.flatMap { Data(base64Encoded: $0) })
            #expect(key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: paramsSignature), for: SHA256.hash(data: messages[4]), padding: .PSS))
            // Parameters the token would not honour, or not DER at all: refused, and the SAD's last hash is still there.
            for bad in [params("14"), Data([0x30, 0x00]).base64EncodedString(), "bm90IERFUg==", "%%%"] {
                let refused = try await server.post("/csc/v2/signatures/signHash", ["credentialID": account.credential.id, "SAD": sad, "hashes": [b64(digests[5])],
                                                                                   "signAlgo": "1.2.840.113549.1.1.10", "signAlgoParams": bad], bearer: token)
                #expect(refused.status == 400 && refused.error == "invalid_request" && (refused.json["error_description"] as? String)?.contains("signAlgoParams") == true,
                        "\(refused.json)")
            }
            let last = try await server.post("/csc/v2/signatures/signHash", ["credentialID": account.credential.id, "SAD": sad, "hashes": [b64(digests[5])],
                                                                            "signAlgo": "1.2.840.113549.1.1.10", "signAlgoParams": params("20"),
                                                                            "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1"], bearer: token)
            #expect(last.status == 200, "\(last.json)")
        }
    }

    @Test("errors: stable codes and statuses, never a 500")
    func errors() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            var account = try await server.activate(name: "Elena")
            let other = try await server.activate(name: "Franco")
            let token = try #require(try await server.post("/csc/v1/auth/login", basic: (account.username, account.password)).json["access_token"] as? String)
            let id = account.credential.id
            let digest = Array(SHA256.hash(data: Data("e".utf8)))

            let noToken = try await server.post("/csc/v1/credentials/list")
            #expect(noToken.status == 401 && noToken.error == "invalid_token")
            let badToken = try await server.post("/csc/v1/credentials/list", bearer: "forged")
            #expect(badToken.status == 401 && badToken.error == "invalid_token")
            let badLogin = try await server.post("/csc/v1/auth/login", basic: (account.username, "wrong password!"))
            #expect(badLogin.status == 401 && badLogin.error == "authentication_error")
            let noBasic = try await server.post("/csc/v1/auth/login")
            #expect(noBasic.status == 401)

            let malformed = try await server.post("/csc/v1/credentials/authorize", raw: "{not json", bearer: token)
            #expect(malformed.status == 400 && malformed.error == "invalid_request")
            let wrongType = try await server.post("/csc/v1/credentials/authorize", raw: #"{"credentialID": 5}"#, bearer: token)
            #expect(wrongType.status == 400 && wrongType.error == "invalid_request")
            let badBase64 = try await server.post("/csc/v1/credentials/authorize", ["credentialID": id, "numSignatures": 1, "hash": ["***"], "PIN": account.password, "OTP": "123456"], bearer: token)
            #expect(badBase64.status == 400 && badBase64.error == "invalid_request")
            let missingOTP = try await server.post("/csc/v1/credentials/authorize", ["credentialID": id, "numSignatures": 1, "hash": [b64(digest)], "PIN": account.password], bearer: token)
            #expect(missingOTP.status == 400 && missingOTP.error == "invalid_request")

            let wrongPIN = try await server.post("/csc/v1/credentials/authorize", ["credentialID": id, "numSignatures": 1, "hash": [b64(digest)], "PIN": "wrong password!", "OTP": account.nextOTP()], bearer: token)
            #expect(wrongPIN.status == 400 && wrongPIN.error == "invalid_pin")
            let wrongPINv2 = try await server.post("/csc/v2/credentials/authorize", ["credentialID": id, "numSignatures": 1, "hashes": [b64(digest)], "authData": [["id": "PIN", "value": "nope nope nope"], ["id": "OTP", "value": account.nextOTP()]]], bearer: token)
            #expect(wrongPINv2.status == 400 && wrongPINv2.error == "invalid_authentication_data")
            let wrongOTP = try await server.post("/csc/v1/credentials/authorize", ["credentialID": id, "numSignatures": 1, "hash": [b64(digest)], "PIN": account.password, "OTP": "000000"], bearer: token)
            #expect(wrongOTP.status == 400 && wrongOTP.error == "invalid_otp")
            let tooMany = try await server.post("/csc/v1/credentials/authorize", ["credentialID": id, "numSignatures": 101, "hash": [b64(digest)], "PIN": account.password, "OTP": account.nextOTP()], bearer: token)
            #expect(tooMany.status == 400 && (tooMany.json["error_description"] as? String) == "Numbers of signatures is too high")
            let foreign = try await server.post("/csc/v1/credentials/info", ["credentialID": other.credential.id], bearer: token)
            #expect(foreign.status == 400 && foreign.error == "invalid_request")
            let forgedSAD = try await server.post("/csc/v1/signatures/signHash", ["credentialID": id, "SAD": "forged", "hash": [b64(digest)], "signAlgo": "1.2.840.10045.4.3.2"], bearer: token)
            #expect(forgedSAD.status == 400 && forgedSAD.error == "invalid_request")
            // A bad signAlgo and a short hash, each with a valid SAD (a forged one alone gives the same 400): refused for
            // what they are, and the SAD still signs afterwards.
            let sadResponse = try await server.post("/csc/v1/credentials/authorize", ["credentialID": id, "numSignatures": 1, "hash": [b64(digest)], "PIN": account.password, "OTP": account.nextOTP()], bearer: token)
            let sad = try #require(sadResponse.json["SAD"] as? String, "\(sadResponse.json)")
            let badAlgo = try await server.post("/csc/v1/signatures/signHash", ["credentialID": id, "SAD": sad, "hash": [b64(digest)], "signAlgo": "1.2.3"], bearer: token)
            #expect(badAlgo.status == 400 && badAlgo.error == "invalid_request" && badAlgo.json["error_description"] as? String == "Invalid parameter signAlgo", "\(badAlgo.json)")
            let shortHash = try await server.post("/csc/v1/signatures/signHash", ["credentialID": id, "SAD": sad, "hash": [b64([1, 2, 3])], "signAlgo": "1.2.840.10045.4.3.2"], bearer: token)
            #expect(shortHash.status == 400 && shortHash.error == "invalid_request" && (shortHash.json["error_description"] as? String)?.hasPrefix("Invalid hash length") == true,
                    "\(shortHash.json)")
            let signed = try await server.post("/csc/v1/signatures/signHash", ["credentialID": id, "SAD": sad, "hash": [b64(digest)], "signAlgo": "1.2.840.10045.4.3.2"], bearer: token)
            #expect(signed.status == 200 && (signed.json["signatures"] as? [String])?.count == 1, "\(signed.json)")

            let huge = try await server.post("/csc/v1/credentials/authorize", ["credentialID": id, "hash": Array(repeating: String(repeating: "A", count: 1000), count: 2000)], bearer: token)
            #expect(huge.status == 413)
            let unknown = try await server.post("/csc/v1/no/such/method", bearer: token)
            #expect(unknown.status == 404 && unknown.error == "not_found")
            // After all that, the holder still signs (the bad requests changed nothing but the failure counters).
            let authorize = try await server.post("/csc/v1/credentials/authorize", ["credentialID": id, "numSignatures": 1, "hash": [b64(digest)], "PIN": account.password, "OTP": account.nextOTP()], bearer: token)
            #expect(authorize.status == 200, "\(authorize.json)")
        }
    }

    @Test("32 concurrent clients sign through one server, every signature valid", arguments: HolderKeyStorage.allCases)
    func concurrentClients(holderKeys: HolderKeyStorage) async throws {
        let fixture = try TestToken(sessions: 2)
        try await LiveServer.with(fixture, holderKeys: holderKeys) { server in
            var accounts: [LiveServer.Account] = []
            for index in 0..<32 { accounts.append(try await server.activate(name: "C\(index)")) }
            let results = try await withThrowingTaskGroup(of: Int.self) { group in
                for account in accounts {
                    group.addTask {
                        var account = account
                        let token = try #require(try await server.post("/csc/v1/auth/login", basic: (account.username, account.password)).json["access_token"] as? String)
                        let messages = (0..<4).map { Data("\(account.username) doc \($0)".utf8) }
                        let digests = messages.map { Array(SHA256.hash(data: $0)) }
                        let sad = try #require(try await server.post("/csc/v1/credentials/authorize", ["credentialID": account.credential.id, "numSignatures": 4, "hash": digests.map(b64), "PIN": account.password, "OTP": account.nextOTP()], bearer: token).json["SAD"] as? String)
                        let signed = try await server.post("/csc/v1/signatures/signHash", ["credentialID": account.credential.id, "SAD": sad, "hash": digests.map(b64), "signAlgo": "1.2.840.10045.4.3.2"], bearer: token)
                        let key = try #require(P256.Signing.PublicKey(try Certificate(derEncoded: account.credential.certificateDER).publicKey))
                        let signatures = (signed.json["signatures"] as? [String] ?? []).compactMap { Data(base64Encoded: $0) }
                        return try zip(messages, signatures).filter { try key.isValidSignature(P256.Signing.ECDSASignature(derRepresentation: $1), for: SHA256.hash(data: $0)) }.count
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(results.count == 32)
            #expect(results.allSatisfy { $0 == 4 })
        }
    }
}

@Suite("CSC API: sendOTP and extendTransaction")
struct CSCTransactionTests {
    @Test("SMS holders get a code from credentials/sendOTP; it authorizes once")
    func sendOTP() async throws {
        let fixture = try TestToken()
        try await LiveServer.with(fixture) { server in
            let account = try await server.activate(name: "Sofia", device: .sms)
            let token = try #require(try await server.post("/csc/v1/auth/login", basic: (account.username, account.password)).json["access_token"] as? String)
            let info = try await server.post("/csc/v1/credentials/info", ["credentialID": account.credential.id], bearer: token)
            #expect((info.json["OTP"] as? [String: Any])?["type"] as? String == "online")
            let sent = try await server.post("/csc/v1/credentials/sendOTP", ["credentialID": account.credential.id], bearer: token)
            #expect(sent.status == 204)
            let code = try server.lastSMSCode()
            let digest = b64(Array(SHA256.hash(data: Data("sms".utf8))))
            let body: [String: Any] = ["credentialID": account.credential.id, "numSignatures": 1, "hash": [digest], "PIN": account.password, "OTP": code]
            #expect(try await server.post("/csc/v1/credentials/authorize", body, bearer: token).status == 200)
            let replay = try await server.post("/csc/v1/credentials/authorize", body, bearer: token)
            #expect(replay.status == 400 && replay.error == "invalid_otp")
            // Five codes in 15 minutes at most (activation 1, sendOTP 2 to 5): the sixth is 429 on v1 and v2.
            for _ in 0..<3 { #expect(try await server.post("/csc/v1/credentials/sendOTP", ["credentialID": account.credential.id], bearer: token).status == 204) }
            for version in [1, 2] {
                let flooded = try await server.post("/csc/v\(version)/credentials/sendOTP", ["credentialID": account.credential.id], bearer: token)
                #expect(flooded.status == 429 && flooded.error == "too_many_requests", "\(flooded.json)")
            }
            // A TOTP holder has no SMS to send.
            let totp = try await server.activate(name: "Tito", device: .hotp)
            let totpToken = try #require(try await server.post("/csc/v1/auth/login", basic: (totp.username, totp.password)).json["access_token"] as? String)
            let refused = try await server.post("/csc/v1/credentials/sendOTP", ["credentialID": totp.credential.id], bearer: totpToken)
            #expect(refused.status == 400 && refused.error == "invalid_request")
        }
    }

    @Test("extendTransaction renews a live SAD (250 s, extend, 250 s: still signs); an unknown one is refused")
    func extendTransaction() async throws {
        let fixture = try TestToken()
        let clock = TestClock()
        try await LiveServer.with(fixture, clock: clock.serviceClock) { server in
            var account = try await server.activate(name: "Ezio")
            let token = try #require(try await server.post("/csc/v1/auth/login", basic: (account.username, account.password)).json["access_token"] as? String)
            let digest = b64(Array(SHA256.hash(data: Data("ext".utf8))))
            let sad = try #require(try await server.post("/csc/v1/credentials/authorize", ["credentialID": account.credential.id, "numSignatures": 1, "hash": [digest], "PIN": account.password, "OTP": account.nextOTP()], bearer: token).json["SAD"] as? String)
            // 250 s of the SAD's 300 gone: the extension gives it 300 s from now, so 250 s later (500 s after authorize) it signs.
            clock.advance(250)
            let extended = try await server.post("/csc/v1/credentials/extendTransaction", ["credentialID": account.credential.id, "SAD": sad], bearer: token)
            #expect(extended.status == 200 && extended.json["expiresIn"] as? Int == 300)
            #expect(extended.json["SAD"] as? String == sad)
            let unknown = try await server.post("/csc/v1/credentials/extendTransaction", ["credentialID": account.credential.id, "SAD": "forged"], bearer: token)
            #expect(unknown.status == 400 && unknown.error == "invalid_request")
            let missing = try await server.post("/csc/v1/credentials/extendTransaction", ["credentialID": account.credential.id], bearer: token)
            #expect(missing.status == 400 && missing.error == "invalid_request")
            clock.advance(250)
            let signed = try await server.post("/csc/v1/signatures/signHash", ["credentialID": account.credential.id, "SAD": sad, "hash": [digest], "signAlgo": "1.2.840.10045.2.1", "hashAlgo": "2.16.840.1.101.3.4.2.1"], bearer: token)
            #expect(signed.status == 200, "\(signed.json)")
        }
    }
}
