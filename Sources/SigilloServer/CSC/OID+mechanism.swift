import Foundation
import PKCS11
import CSCProtocol
import SigilloDomain
import SwiftASN1

/// What the CSC OIDs mean to the token: hash algorithms, a credential's `key.algo`, signature mechanisms.
extension OID {
    static func hash(_ oid: String) -> HashAlgorithm? {
        switch oid {
        case self.sha256, "SHA256", "SHA-256", "sha256": return .sha256
        case self.sha384, "SHA384", "SHA-384", "sha384": return .sha384
        case self.sha512, "SHA512", "SHA-512", "sha512": return .sha512
        default: return nil
        }
    }

    /// The OID of a hash algorithm.
    static func hashOID(_ algorithm: HashAlgorithm) -> String {
        switch algorithm {
        case .sha256: self.sha256
        case .sha384: self.sha384
        case .sha512: self.sha512
        }
    }

    /// The `key.algo` list of a credential: key OID and every signature OID it can make.
    static func keyAlgorithms(_ algorithm: KeyAlgorithm) -> [String] {
        algorithm.isRSA
            ? [self.rsaEncryption, self.sha256WithRSA, self.sha384WithRSA, self.sha512WithRSA, self.rsaPSS]
            : [self.ecPublicKey, self.ecdsaSHA256, self.ecdsaSHA384, self.ecdsaSHA512]
    }


    /// RSASSA-PSS-params (RFC 4055 §3.1), base64 DER as CSC's `signAlgoParams`: the hash, MGF1's hash and the salt
    /// length, with the standard's defaults (SHA-1, MGF1 with SHA-1, 20 bytes) for fields left out.
    package static func pssParameters(_ base64: String) throws -> (hash: String, mgfHash: String, saltLength: Int) {
        guard let der = Base64Text.decodeLenient(base64) else { throw CSCError.invalidRequest("Invalid parameter signAlgoParams: not base64") }
        func algorithm(_ node: ASN1Node) throws -> (oid: String, parameters: ASN1Node?) {
            try DER.sequence(node, identifier: .sequence) { nodes in
                let oid = try ASN1ObjectIdentifier(derEncoded: &nodes)
                let parameters = nodes.next()
                guard nodes.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "trailing fields in an AlgorithmIdentifier") }
                return (oid.description, parameters)
            }
        }
        do {
            return try DER.sequence(try DER.parse(der), identifier: .sequence) { nodes in
                let hash = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) { try algorithm($0).oid } ?? self.sha1
                let mgfHash = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 1, tagClass: .contextSpecific) { node -> String in
                    let mgf = try algorithm(node)
                    guard mgf.oid == self.mgf1, let inner = mgf.parameters else { throw ASN1Error.invalidASN1Object(reason: "mask generation is not MGF1") }
                    return try algorithm(inner).oid
                } ?? self.sha1
                let salt = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 2, tagClass: .contextSpecific) { try Int(derEncoded: $0) } ?? 20
                let trailer = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 3, tagClass: .contextSpecific) { try Int(derEncoded: $0) } ?? 1
                guard trailer == 1, nodes.next() == nil else { throw ASN1Error.invalidASN1Object(reason: "unknown trailer field") }
                return (hash, mgfHash, salt)
            }
        } catch {
            throw CSCError.invalidRequest("Invalid parameter signAlgoParams: not RSASSA-PSS-params DER")
        }
    }

    /// The mechanism for `signAlgo`, with the hash from the OID itself, `hashAlgo`, or the digest length.
    ///
    /// For RSASSA-PSS, `signAlgoParams` (when given) must be what the token makes: MGF1 with the same hash, and a salt
    /// as long as the digest. Anything else is refused rather than signed differently from what the client will write
    /// in its signature's algorithm identifier.
    package static func mechanism(signAlgo: String, hashAlgo: String?, signAlgoParams: String? = nil, digestLength: Int) throws -> SignatureMechanism {
        func hash() throws -> HashAlgorithm {
            if let hashAlgo {
                guard let hash = self.hash(hashAlgo) else { throw CSCError.invalidRequest("Invalid parameter hashAlgo") }
                return hash
            }
            guard let hash = HashAlgorithm(digestLength: digestLength) else { throw CSCError.invalidRequest("Invalid hash length") }
            return hash
        }
        switch signAlgo {
        case self.ecdsaSHA256: return .ecdsa(.sha256)
        case self.ecdsaSHA384: return .ecdsa(.sha384)
        case self.ecdsaSHA512: return .ecdsa(.sha512)
        case self.ecPublicKey: return .ecdsa(try hash())
        case self.sha256WithRSA: return .rsaPKCS1v15(.sha256)
        case self.sha384WithRSA: return .rsaPKCS1v15(.sha384)
        case self.sha512WithRSA: return .rsaPKCS1v15(.sha512)
        case self.rsaEncryption: return .rsaPKCS1v15(try hash())
        case self.rsaPSS:
            guard let signAlgoParams else { return .rsaPSS(try hash()) }
            let parameters = try self.pssParameters(signAlgoParams)
            guard let pssHash = self.hash(parameters.hash) else {
                throw CSCError.invalidRequest("Invalid parameter signAlgoParams: hash \(parameters.hash) is not SHA-256, SHA-384 or SHA-512")
            }
            if hashAlgo != nil, try hash() != pssHash {
                throw CSCError.invalidRequest("Invalid parameter signAlgoParams: its hash differs from hashAlgorithmOID")
            }
            guard parameters.mgfHash == parameters.hash, parameters.saltLength == pssHash.digestLength else {
                throw CSCError.invalidRequest("Invalid parameter signAlgoParams: only MGF1 with the same hash and a salt of the digest's length (\(pssHash.digestLength) bytes) are supported")
            }
            return .rsaPSS(pssHash)
        default: throw CSCError.invalidRequest("Invalid parameter signAlgo")
        }
    }
}
