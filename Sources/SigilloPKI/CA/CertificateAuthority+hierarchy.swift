import Foundation
import PKCS11
import SigilloDomain
import SwiftASN1
import X509

/// The production hierarchy: the issuing CA's key is generated in the token, the token signs a PKCS#10 request,
/// the provider's offline root certifies it, and the certificate is installed with the chain up to that root.
extension CertificateAuthority {
    /// A PKCS#10 request for the CA key `keyID` already in `token`, signed by the token.
    ///
    /// The request names `name` and asks for nothing else: the root decides the CA certificate's extensions.
    ///
    /// - Throws: `PKCS11Error.keyNotFound`; `SigilloError.invalidRequest` for an unsupported key type.
    public static func signingRequest(token: Token, keyID: String, name: DistinguishedName) async throws -> CertificateSigningRequest {
        guard !name.isEmpty else { throw SigilloError(.invalidRequest, "the CA needs a subject name") }
        let key = try await TokenPrivateKey.load(token: token, keyID: keyID)
        return try await CertificateSigningRequest(
            version: .v1, subject: name, asyncPrivateKey: Certificate.PrivateKey(key), attributes: CertificateSigningRequest.Attributes(),
            signatureAlgorithm: key.defaultSignatureAlgorithm)
    }

    /// The issuing CA whose certificate `certificate` a root issued for the key `keyID` in `token`.
    ///
    /// Checks that the certificate's key is the token's, that it is a CA certificate allowed to sign certificates,
    /// and that it chains through `chain` (intermediates, then the root; the root is the last certificate and is
    /// self-signed) with every certificate valid at `now`. With an empty chain the certificate must be its own root
    /// (a self-signed CA, as `sigillo ca init` makes).
    ///
    /// - Throws: `SigilloError.certificateInvalid` naming what does not hold; `PKCS11Error.keyNotFound`.
    public static func importing(
        token: Token, keyID: String, certificate: Certificate, chain: [Certificate], now: Date,
        profile: QualifiedCertificateProfile = .development()
    ) async throws -> CertificateAuthority {
        let ca = try CertificateAuthority(token: token, keyID: keyID, certificate: certificate, chain: chain, profile: profile)
        try await ca.checkKeyInToken()
        try await ca.checkChain(now: now)
        return ca
    }

    /// Checks the CA certificate: keyUsage has keyCertSign, and the chain (`chain`, root last) validates it at `now`
    /// under RFC 5280 (signatures, validity, CA constraints, path length) with the last certificate as the only
    /// trust anchor.
    ///
    /// - Throws: `SigilloError.certificateInvalid`.
    public func checkChain(now: Date) async throws {
        guard let keyUsage = try? self.certificate.extensions.keyUsage, keyUsage.keyCertSign else {
            throw SigilloError(.certificateInvalid, "the CA certificate's keyUsage does not allow signing certificates (keyCertSign)")
        }
        let root = self.chain.last ?? self.certificate
        guard root.subject == root.issuer, root.publicKey.isValidSignature(root.signature, for: root) else {
            throw SigilloError(.certificateInvalid, self.chain.isEmpty
                ? "the CA certificate is not self-signed: give the chain up to the root (--chain)"
                : "the chain's last certificate (\(root.subject)) is not a self-signed root")
        }
        var verifier = Verifier(rootCertificates: CertificateStore([root])) { RFC5280Policy(fixedValidationTime: now) }
        let result = await verifier.validate(leaf: self.certificate, intermediates: CertificateStore(Array(self.chain.dropLast())))
        switch result {
        case .validCertificate:
            return
        case .couldNotValidate(let failures):
            let reasons = failures.map { "\($0.policyFailureReason)" }
            throw SigilloError(.certificateInvalid, "the CA certificate does not chain to \(root.subject)"
                + (reasons.isEmpty ? "" : ": " + reasons.joined(separator: "; ")))
        }
    }

    /// The certificates of a PEM file, in order.
    ///
    /// - Throws: `SigilloError.invalidRequest` when there is none or one does not parse.
    public static func certificates(pem: String, what: String) throws -> [Certificate] {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: pem)
        } catch {
            throw SigilloError(.invalidRequest, "\(what) is not PEM")
        }
        guard !documents.isEmpty else { throw SigilloError(.invalidRequest, "\(what) holds no certificate") }
        return try documents.map { document in
            guard document.discriminator == "CERTIFICATE" else {
                throw SigilloError(.invalidRequest, "\(what) holds a \(document.discriminator), not only certificates")
            }
            do {
                return try Certificate(pemDocument: document)
            } catch {
                throw SigilloError(.invalidRequest, "\(what) holds a certificate that does not parse: \(error)")
            }
        }
    }
}
