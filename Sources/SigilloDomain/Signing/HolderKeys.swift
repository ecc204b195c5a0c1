import Foundation
import Logging
import PKCS11

/// Holders' key pairs, as the use cases need them: generated at activation and renewal, used for signatures, gone at
/// revocation. Token failures become clear domain errors; their CK_RV stays in the log.
///
/// New keys are kept as `storage` says: wrapped under the token's KEK in the credential row (`wrappedKey`,
/// `publicKey`), or as token objects with `CKA_ID` = the credential id. A credential is signed with what its row has:
/// its wrapped key, else its token object (keys made before `holderKeys: wrapped`, until `sigillo admin keys migrate`).
struct HolderKeys: Sendable {
    let signer: Signer
    let storage: HolderKeyStorage
    let logger: Logger

    /// A new key pair: its public key, and its wrapped private key when kept wrapped.
    struct Generated: Sendable {
        /// SubjectPublicKeyInfo, DER.
        var publicKey: [UInt8]
        /// `WrappedKey.encoded`, nil for a token object.
        var wrappedKey: [UInt8]?

        /// The credential columns that keep the key (`wrappedKey`, `publicKey`), set on `credential`.
        func store(in credential: inout Credential) {
            guard let wrappedKey = self.wrappedKey else { return }
            credential.wrappedKey = wrappedKey
            credential.publicKey = self.publicKey
        }
    }

    /// Generates a key pair for credential `id` as `storage` says.
    func generate(id: String, algorithm: KeyAlgorithm) async throws -> Generated {
        try await self.generate(id: id, algorithm: algorithm, storage: self.storage)
    }

    func generate(id: String, algorithm: KeyAlgorithm, storage: HolderKeyStorage) async throws -> Generated {
        switch storage {
        case .token:
            return Generated(publicKey: try await self.tokenCall { try await self.signer.token.generateKeyPair(id: id, algorithm: algorithm) }, wrappedKey: nil)
        case .wrapped:
            let wrapped: WrappedKey
            do {
                wrapped = try await self.signer.token.generateWrappedKeyPair(credential: id, algorithm: algorithm)
            } catch let error as PKCS11Error where error.code == .keyNotFound || error.code == .invalidConfiguration || error.code == .functionNotSupported {
                self.logger.error("wrapped key generation impossible", metadata: ["error": "\(error)"])
                throw SigilloError(.tokenUnavailable, "the signing device has no usable key-encryption key; the operator must create it")
            } catch {
                return try await self.tokenCall { throw error }
            }
            return Generated(publicKey: wrapped.publicKey, wrappedKey: wrapped.encoded)
        }
    }

    /// Undoes `generate` after a failed activation or renewal: the token objects destroyed (a wrapped key left nothing
    /// in the token: it is simply not stored).
    func discard(_ generated: Generated, id: String) async {
        guard generated.wrappedKey == nil else { return }
        _ = try? await self.signer.token.destroyKeyPair(id: id)
    }

    /// Makes `credential`'s key unusable after its revocation (the store deleted its wrapped key in the same
    /// transaction): the unwrapped copies evicted on every worker, and any token objects with its id destroyed.
    ///
    /// - Parameter hadWrappedKey: whether the row still had its wrapped key before this revocation.
    /// - Returns: how many keys went: the token objects destroyed, plus one for a wrapped key deleted now (0 when already gone).
    func destroy(_ credential: Credential, hadWrappedKey: Bool) async throws -> Int {
        self.signer.token.evictUnwrapped(credential: credential.id)
        let objects = try await self.signer.token.destroyKeyPair(id: credential.tokenKeyID)
        return objects + (hadWrappedKey ? 1 : 0)
    }

    /// Destroys the token objects of key `id` (after `migrate` stored its replacement); returns how many went.
    func destroyTokenObjects(id: String) async throws -> Int {
        try await self.signer.token.destroyKeyPair(id: id)
    }

    /// Drops the unwrapped copies of `credentialID`'s key on this process's workers (a refused credential's).
    func evict(_ credentialID: String) {
        self.signer.token.evictUnwrapped(credential: credentialID)
    }

    /// Signs `digests` with `credential`'s key, in input order: its wrapped key when its row has one, else its token object.
    func sign(digests: [[UInt8]], credential: Credential, mechanism: SignatureMechanism) async throws -> [[UInt8]] {
        var wrapped: WrappedKey?
        if let encoded = credential.wrappedKey {
            do {
                wrapped = try WrappedKey(encoded: encoded, publicKey: credential.publicKey ?? [])
            } catch {
                self.logger.error("stored wrapped key unreadable", metadata: ["credential": "\(credential.id)", "error": "\(error)"])
                throw SigilloError(.credentialDisabled, "the credential's key cannot be used")
            }
        }
        return try await self.tokenCall {
            try await self.signer.sign(digests: digests, credential: wrapped == nil ? credential.tokenKeyID : credential.id, wrapped: wrapped, mechanism: mechanism)
        }
    }

    /// Token failures become a clear `tokenUnavailable`; their CK_RV stays in the log.
    private func tokenCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PKCS11Error {
            self.logger.error("token operation failed", metadata: ["error": "\(error)"])
            switch error.code {
            case .keyNotFound: throw SigilloError(.credentialDisabled, "the credential's key is not in the token")
            case .wrappedKeyInvalid: throw SigilloError(.credentialDisabled, "the credential's key cannot be used")
            case .invalidDigestLength: throw SigilloError(.invalidRequest, error.detail)
            case .mechanismMismatch: throw SigilloError(.invalidRequest, "the signature algorithm does not match the key")
            default: throw SigilloError(.tokenUnavailable, "the signing device is not available; try again")
            }
        }
    }
}
