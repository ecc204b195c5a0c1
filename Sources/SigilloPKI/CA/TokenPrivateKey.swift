import SigilloDomain
import Crypto
import Foundation
import PKCS11
import SwiftASN1
import X509
import _CryptoExtras

/// A swift-certificates private key whose private half never leaves the token.
///
/// Wrap it with `Certificate.PrivateKey(_:)` and sign with swift-certificates' async APIs
/// (`Certificate(..., issuerAsyncPrivateKey:)`, `Certificate.PrivateKey.signAsynchronously`): the bytes to
/// sign (a certificate's TBS) are hashed here with swift-crypto and only the digest goes to the token, through
/// `Signer.sign(digest:credential:mechanism:)` on the token's session pool.
///
/// Synchronous signing (`Certificate(..., issuerPrivateKey:)`) is refused: it would have to block a thread of
/// the cooperative pool while the token works.
public struct TokenPrivateKey: CustomPrivateKey {
    /// The kind of key, as far as signing is concerned.
    enum Kind: Hashable, Sendable {
        case p256
        case p384
        case rsa
    }

    /// The token holding the private key.
    public let token: Token
    /// The key's `CKA_ID` in the token.
    public let keyID: String
    /// The public half, as found in certificates.
    public let publicKey: Certificate.PublicKey
    let kind: Kind

    /// A key in `token` whose public half is `publicKey`.
    ///
    /// - Throws: `SigilloError.invalidRequest` if the key is neither EC P-256/P-384 nor RSA.
    public init(token: Token, keyID: String, publicKey: Certificate.PublicKey) throws {
        if P256.Signing.PublicKey(publicKey) != nil {
            self.kind = .p256
        } else if P384.Signing.PublicKey(publicKey) != nil {
            self.kind = .p384
        } else if _RSA.Signing.PublicKey(publicKey) != nil {
            self.kind = .rsa
        } else {
            throw SigilloError(.invalidRequest, "the key '\(keyID)' must be EC P-256, EC P-384 or RSA")
        }
        self.token = token
        self.keyID = keyID
        self.publicKey = publicKey
    }

    /// A key in `token` whose public half is `publicKeySPKI` (SubjectPublicKeyInfo, DER).
    public init(token: Token, keyID: String, publicKeySPKI: [UInt8]) throws {
        try self.init(token: token, keyID: keyID, publicKey: try Certificate.PublicKey(derEncoded: publicKeySPKI))
    }

    /// The key `keyID` of `token`, with its public half read from the token.
    public static func load(token: Token, keyID: String) async throws -> TokenPrivateKey {
        try TokenPrivateKey(token: token, keyID: keyID, publicKeySPKI: try await token.publicKey(id: keyID))
    }

    /// ECDSA with SHA-256 for P-256, with SHA-384 for P-384; `sha256WithRSAEncryption` for RSA.
    public var defaultSignatureAlgorithm: Certificate.SignatureAlgorithm {
        switch self.kind {
        case .p256: return .ecdsaWithSHA256
        case .p384: return .ecdsaWithSHA384
        case .rsa: return .sha256WithRSAEncryption
        }
    }

    public var supportedSignatureAlgorithms: [Certificate.SignatureAlgorithm] {
        switch self.kind {
        case .p256, .p384: return [.ecdsaWithSHA256, .ecdsaWithSHA384]
        case .rsa: return [.sha256WithRSAEncryption, .sha384WithRSAEncryption]
        }
    }

    /// The token mechanism and hash for `signatureAlgorithm`.
    func mechanism(for signatureAlgorithm: Certificate.SignatureAlgorithm) throws -> SignatureMechanism {
        switch (self.kind, signatureAlgorithm) {
        case (.p256, .ecdsaWithSHA256), (.p384, .ecdsaWithSHA256): return .ecdsa(.sha256)
        case (.p256, .ecdsaWithSHA384), (.p384, .ecdsaWithSHA384): return .ecdsa(.sha384)
        case (.rsa, .sha256WithRSAEncryption): return .rsaPKCS1v15(.sha256)
        case (.rsa, .sha384WithRSAEncryption): return .rsaPKCS1v15(.sha384)
        default:
            throw CertificateError.unsupportedSignatureAlgorithm(reason: "the token key '\(self.keyID)' cannot sign with \(signatureAlgorithm)")
        }
    }

    /// Always throws: signing with the token is asynchronous. Use `signAsynchronously` (swift-certificates'
    /// `issuerAsyncPrivateKey` initialisers do).
    public func signSynchronously(bytes: some DataProtocol, signatureAlgorithm: Certificate.SignatureAlgorithm) throws -> Certificate.Signature {
        throw CertificateError.unsupportedPrivateKey(reason: "the token key '\(self.keyID)' signs asynchronously only; use the issuerAsyncPrivateKey APIs")
    }

    /// Hashes `bytes` and has the token sign the digest.
    ///
    /// - Throws: `CertificateError.unsupportedSignatureAlgorithm` for an algorithm this key cannot produce;
    ///   `PKCS11Error` from the token (`keyNotFound`, `tokenUnavailable`, ...).
    public func signAsynchronously(bytes: some DataProtocol & Sendable, signatureAlgorithm: Certificate.SignatureAlgorithm) async throws -> Certificate.Signature {
        let mechanism = try self.mechanism(for: signatureAlgorithm)
        let digest: [UInt8]
        switch mechanism.hash {
        case .sha256: digest = Array(SHA256.hash(data: bytes))
        case .sha384: digest = Array(SHA384.hash(data: bytes))
        case .sha512: digest = Array(SHA512.hash(data: bytes))
        }
        // ECDSA comes back as a DER ECDSA-Sig-Value, RSA as the raw signature: what the BIT STRING holds.
        let signature = try await Signer(token: self.token).sign(digest: digest, credential: self.keyID, mechanism: mechanism)
        return try Certificate.Signature(signatureAlgorithm: signatureAlgorithm, signatureBytes: ASN1BitString(bytes: signature[...]))
    }

    // MARK: Hashable

    public static func == (lhs: TokenPrivateKey, rhs: TokenPrivateKey) -> Bool {
        lhs.token === rhs.token && lhs.keyID == rhs.keyID && lhs.publicKey == rhs.publicKey
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(self.token))
        hasher.combine(self.keyID)
        hasher.combine(self.publicKey)
    }

    // MARK: PEMSerializable (the private key cannot be exported)

    public static var defaultPEMDiscriminator: String { "PRIVATE KEY" }

    /// Always throws: the private key is not extractable from the token.
    public func serializeAsPEM(discriminator: String) throws -> PEMDocument {
        throw CertificateError.unsupportedPrivateKey(reason: "the token key '\(self.keyID)' is not extractable")
    }

    /// Always throws: the private key is not extractable from the token.
    public func serialize(into coder: inout DER.Serializer) throws {
        throw CertificateError.unsupportedPrivateKey(reason: "the token key '\(self.keyID)' is not extractable")
    }
}
