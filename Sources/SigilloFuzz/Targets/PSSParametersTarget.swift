import CSCProtocol
import PKCS11
import SigilloServer

/// RSASSA-PSS `signAlgoParams` (RFC 4055 RSASSA-PSS-params, DER), as `signatures/signHash` reads them: the input is
/// the DER, sent base64 as a client would. Checked: a refusal is always a 400 `invalid_request` (never an error the
/// server would answer 500), and an accepted one is what the token makes (MGF1 with the same hash, salt as long as
/// the digest).
enum PSSParametersTarget {
    static let target = FuzzTarget(name: "pss-params", summary: "RSASSA-PSS signAlgoParams (DER) for signHash") {
        { bytes in Self.run(bytes) }
    }

    static func run(_ bytes: [UInt8]) {
        let base64 = Base64Text.encode(bytes)
        let parameters: (hash: String, mgfHash: String, saltLength: Int)?
        do {
            parameters = try OID.pssParameters(base64)
        } catch {
            Self.checkRefusal(error)
            parameters = nil
        }
        // signHash without hashAlgorithmOID (the hash from the digest's length) and with one.
        for (hashAlgo, digestLength) in [(nil, 32), (nil, 64), (OID.sha256, 32), (OID.sha384, 48)] as [(String?, Int)] {
            do {
                let mechanism = try OID.mechanism(signAlgo: OID.rsaPSS, hashAlgo: hashAlgo, signAlgoParams: base64, digestLength: digestLength)
                guard case .rsaPSS(let hash) = mechanism, let parameters else {
                    FuzzCheck.fail("signAlgoParams accepted as \(mechanism) although they do not parse")
                }
                FuzzCheck.require(parameters.hash == Self.oid(of: hash) && parameters.mgfHash == parameters.hash && parameters.saltLength == hash.digestLength,
                                  "accepted \(parameters) as RSASSA-PSS with \(hash), which the token does not make")
            } catch {
                Self.checkRefusal(error)
            }
        }
    }

    static func checkRefusal(_ error: any Error) {
        guard let error = error as? APIError else { FuzzCheck.fail("refused with \(type(of: error)), which the server answers 500") }
        FuzzCheck.require(error.status == .badRequest && error.code == "invalid_request", "refused as \(error.status) \(error.code)")
    }

    static func oid(of hash: HashAlgorithm) -> String {
        switch hash {
        case .sha256: OID.sha256
        case .sha384: OID.sha384
        case .sha512: OID.sha512
        }
    }
}
