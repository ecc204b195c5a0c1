import Foundation
import Logging
import PKCS11

/// Holders' key pairs in the token, as the use cases need them: generated at activation and renewal, used for
/// signatures, destroyed at revocation. Token failures become clear domain errors; their CK_RV stays in the log.
struct HolderKeys: Sendable {
    let signer: Signer
    let logger: Logger

    /// Generates a key pair with `CKA_ID` `id`; returns its public key (SubjectPublicKeyInfo, DER).
    func generate(id: String, algorithm: KeyAlgorithm) async throws -> [UInt8] {
        try await self.tokenCall { try await self.signer.token.generateKeyPair(id: id, algorithm: algorithm) }
    }

    /// Destroys the key pair `id`; returns how many token objects went (0 when already gone). Token errors pass unchanged.
    func destroy(id: String) async throws -> Int {
        try await self.signer.token.destroyKeyPair(id: id)
    }

    /// Signs `digests` with key `id`, in input order.
    func sign(digests: [[UInt8]], id: String, mechanism: SignatureMechanism) async throws -> [[UInt8]] {
        try await self.tokenCall { try await self.signer.sign(digests: digests, credential: id, mechanism: mechanism) }
    }

    /// Token failures become a clear `tokenUnavailable`; their CK_RV stays in the log.
    private func tokenCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PKCS11Error {
            self.logger.error("token operation failed", metadata: ["error": "\(error)"])
            switch error.code {
            case .keyNotFound: throw SigilloError(.credentialDisabled, "the credential's key is not in the token")
            case .invalidDigestLength: throw SigilloError(.invalidRequest, error.detail)
            case .mechanismMismatch: throw SigilloError(.invalidRequest, "the signature algorithm does not match the key")
            default: throw SigilloError(.tokenUnavailable, "the signing device is not available; try again")
            }
        }
    }
}
