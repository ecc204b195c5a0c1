import CSCProtocol
import Foundation
import Testing

@Suite("CSC wire types: lenient requests, responses both ways")
struct CSCMessageTests {
    func request(_ json: String) throws -> CSCRequest {
        try JSONDecoder().decode(CSCRequest.self, from: Data(json.utf8))
    }

    @Test("v1 and v2 names, numbers and booleans as strings, unknown keys ignored")
    func lenientRequest() throws {
        let v1 = try self.request(#"{"credentialID":"c-1","numSignatures":"3","hash":["AAEC"],"PIN":"p","OTP":"123456","certInfo":"true","whatever":{"x":1}}"#)
        #expect(v1.numSignatures == 3)
        #expect(v1.certInfo == true)
        #expect(try v1.digests() == [[0, 1, 2]])
        #expect(v1.credentials().pin == "p" && v1.credentials().otp == "123456")
        let v2 = try self.request(#"{"credentialID":"c-1","numSignatures":2,"hashes":["AAEC","AwQF"],"authData":[{"id":"PIN","value":"p2"},{"id":"otp","value":"654321"}]}"#)
        #expect(try v2.digests() == [[0, 1, 2], [3, 4, 5]])
        #expect(v2.credentials().pin == "p2" && v2.credentials().otp == "654321")
        // v1 fields win over v2 authData when both are given.
        let both = try self.request(#"{"PIN":"v1","authData":[{"id":"PIN","value":"v2"}]}"#)
        #expect(both.credentials().pin == "v1")
    }

    @Test("unusable fields give the CSC description, not a generic decoding error")
    func refusals() throws {
        #expect(throws: CSCRequestError("Invalid parameter numSignatures")) { try self.request(#"{"numSignatures":"many"}"#) }
        #expect(throws: CSCRequestError("Missing (or invalid type) array parameter hash")) { try self.request("{}").digests() }
        #expect(throws: CSCRequestError("Invalid Base64 hash string parameter")) { try self.request(#"{"hash":["%%%"]}"#).digests() }
        #expect(throws: CSCRequestError("Missing (or invalid type) string parameter credentialID")) { try self.request(#"{"credentialID":""}"#).requireCredentialID() }
        // A field of the wrong JSON type is a decoding error (the server answers "not valid JSON for this method").
        #expect(throws: DecodingError.self) { try self.request(#"{"hash":{"value":"AAEC"}}"#) }
        #expect(throws: DecodingError.self) { try self.request(#"{"hashes":"AAEC"}"#) }
    }

    @Test("signatures/timestamp sends one hash as a plain string: read as a list of one; the nonce as text")
    func timestampRequest() throws {
        let request = try self.request(#"{"hash":"AAEC","hashAlgo":"2.16.840.1.101.3.4.2.1","nonce":"0a1b"}"#)
        #expect(try request.digests() == [[0, 1, 2]])
        #expect(request.nonce == "0a1b")
        let encoded = try JSONEncoder().encode(CSCTimestampRequest(hash: "AAEC", hashAlgo: "2.16.840.1.101.3.4.2.1", nonce: "0a1b"))
        #expect(try self.request(String(decoding: encoded, as: UTF8.self)) == request)
    }

    @Test("a request a client encodes decodes to the same value, with only the fields set")
    func requestRoundTrip() throws {
        let request = CSCRequest(credentialID: "c-1", numSignatures: 2, hash: ["AAEC"], PIN: "p", OTP: "1")
        let data = try JSONEncoder().encode(request)
        let keys = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any]).keys
        #expect(Set(keys) == ["credentialID", "numSignatures", "hash", "PIN", "OTP"])
        #expect(try JSONDecoder().decode(CSCRequest.self, from: data) == request)
    }

    @Test("responses: what the service encodes, clients decode; what other services send leniently, too")
    func responses() throws {
        let info = CSCCredentialInfoResponse(
            description: "d", key: .init(status: "enabled", algo: [OID.ecPublicKey, OID.ecdsaSHA256], len: 256, curve: OID.p256),
            cert: .init(status: "valid", certificates: ["AAEC"]), authMode: "explicit", SCAL: "2", multisign: 100, lang: "en-US",
            PIN: .init(presence: "true", format: "A", label: "Password", description: "p"),
            OTP: .init(presence: "true", type: "offline", format: "N", label: "OTP", description: "o", ID: "totp"))
        #expect(try JSONDecoder().decode(CSCCredentialInfoResponse.self, from: JSONEncoder().encode(info)) == info)
        let foreign = #"{"key":{"status":"enabled","algo":["1.2.840.10045.2.1"],"len":"256"},"multisign":"5","SCAL":2,"OTP":{"presence":true,"type":"online"}}"#
        let decoded = try JSONDecoder().decode(CSCCredentialInfoResponse.self, from: Data(foreign.utf8))
        #expect(decoded.key?.len == 256 && decoded.multisign == 5 && decoded.SCAL == "2" && decoded.OTP?.presence == "true" && decoded.OTP?.type == "online")
        let login = try JSONDecoder().decode(CSCLoginResponse.self, from: Data(#"{"access_token":"t","expires_in":"1800"}"#.utf8))
        #expect(login == CSCLoginResponse(accessToken: "t", tokenType: nil, expiresIn: 1800))
        let encodedLogin = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(CSCLoginResponse(accessToken: "t", expiresIn: 1800))) as? [String: Any])
        #expect(encodedLogin["access_token"] as? String == "t" && encodedLogin["expires_in"] as? Int == 1800 && encodedLogin["token_type"] as? String == "Bearer")
        let error = try JSONDecoder().decode(CSCErrorResponse.self, from: Data(#"{"error":"invalid_request","error_description":"x"}"#.utf8))
        #expect(error == CSCErrorResponse(error: "invalid_request", errorDescription: "x"))
    }
}
