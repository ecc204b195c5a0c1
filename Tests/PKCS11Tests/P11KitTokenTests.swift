import Crypto
import Foundation
import PKCS11
import SigilloTestSupport
import Testing

/// The token reached through p11-kit's RPC (`p11-kit server` exporting a SoftHSM token, `p11-kit-client.so` here):
/// what several nodes on one network token see, and the loss of the token and its return.
@Suite("Token over p11-kit RPC")
struct P11KitTokenTests {
    func sign(_ token: Token, _ id: String, _ message: Data, _ mechanism: SignatureMechanism = .ecdsa(.sha256)) async throws -> [UInt8] {
        let digest: [UInt8] = mechanism.hash == .sha384 ? Array(SHA384.hash(data: message)) : Array(SHA256.hash(data: message))
        return try await Signer(token: token).sign(digest: digest, credential: id, mechanism: mechanism)
    }

    @Test("two clients of one exported token: keys made or destroyed by one are seen by the other, never a stale handle")
    func twoClientsShareKeys() async throws {
        let fixture = try TestToken.unopened()
        try await P11KitServer.with(exporting: fixture) { server in
            // Two module instances: two connections, two p11-kit-remote processes, two SoftHSM instances on one token.
            let first = try server.openToken(sessions: 2)
            let second = try server.openToken(sessions: 2)
            defer {
                first.close()
                second.close()
            }
            let message = Data("two nodes".utf8)
            #expect(try await !second.containsKey(id: "k"))

            // Made by the first, found by the second on a miss (SoftHSM re-reads the token folder).
            let spki = try await first.generateKeyPair(id: "k", algorithm: .ecP256)
            #expect(try await second.containsKey(id: "k"))
            #expect(try await second.publicKey(id: "k") == spki)
            #expect(try verify(try await self.sign(second, "k", message), message: message, publicKey: spki, mechanism: .ecdsa(.sha256)))
            #expect(second.cachedKeyCount == 1)

            // Destroyed by the first: the second's cached handle is not served, the key is reported missing.
            #expect(try await first.destroyKeyPair(id: "k") == 2)
            #expect(await pkcs11ErrorCode { _ = try await self.sign(second, "k", message) } == .keyNotFound)
            #expect(second.cachedKeyCount == 0)
            #expect(try await !second.containsKey(id: "k"))

            // Cached by the second, then replaced by the first (destroyed, made again as P-384): the new key signs.
            let again = try await first.generateKeyPair(id: "k", algorithm: .ecP256)
            #expect(try verify(try await self.sign(second, "k", message), message: message, publicKey: again, mechanism: .ecdsa(.sha256)))
            #expect(try await first.destroyKeyPair(id: "k") == 2)
            let replaced = try await first.generateKeyPair(id: "k", algorithm: .ecP384)
            #expect(try verify(try await self.sign(second, "k", message, .ecdsa(.sha384)), message: message, publicKey: replaced, mechanism: .ecdsa(.sha384)))
            #expect(try await second.keyAlgorithm(id: "k") == .ecP384)
        }
    }

    @Test("the server killed: tokenUnavailable, never a crash; started again: the same Token signs again, no reopen")
    func survivesServerLoss() async throws {
        let fixture = try TestToken.unopened()
        try await P11KitServer.with(exporting: fixture) { server in
            let token = try server.openToken(sessions: 2)
            defer { token.close() }
            let message = Data("before and after".utf8)
            let spki = try await token.generateKeyPair(id: "k", algorithm: .ecP256)
            #expect(try verify(try await self.sign(token, "k", message), message: message, publicKey: spki, mechanism: .ecdsa(.sha256)))

            await server.kill()
            // Every call fails cleanly while the token is away, again and again (each retries the connection).
            for _ in 0..<3 {
                #expect(await pkcs11ErrorCode { _ = try await self.sign(token, "k", message) } == .tokenUnavailable)
                #expect(await pkcs11ErrorCode { try await token.ping() } == .tokenUnavailable)
            }

            try await server.start()
            try await token.ping()
            let signatures = try await Signer(token: token).sign(digests: Array(repeating: Array(SHA256.hash(data: message)), count: 20), credential: "k", mechanism: .ecdsa(.sha256))
            for signature in signatures {
                #expect(try verify(signature, message: message, publicKey: spki, mechanism: .ecdsa(.sha256)))
            }
            #expect(try await token.containsKey(id: "k"))

            // Lost again while idle, back again: the recovery repeats.
            await server.kill()
            try await server.start()
            #expect(try verify(try await self.sign(token, "k", message), message: message, publicKey: spki, mechanism: .ecdsa(.sha256)))
        }
    }

    @Test("the server killed under concurrent signing: every call signs or fails with tokenUnavailable; all sign again after")
    func lossUnderLoad() async throws {
        let fixture = try TestToken.unopened()
        try await P11KitServer.with(exporting: fixture) { server in
            let token = try server.openToken(sessions: 4)
            defer { token.close() }
            let message = Data("under load".utf8)
            let spki = try await token.generateKeyPair(id: "k", algorithm: .ecP256)
            let signer = Signer(token: token)
            let digests = Array(repeating: Array(SHA256.hash(data: message)), count: 3)
            let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
            let tasks = 8
            try await withThrowingTaskGroup(of: (signed: Int, failure: PKCS11Error.Code?).self) { group in
                for _ in 0..<tasks {
                    group.addTask {
                        // Signs until the token is gone: the first failure ends the task.
                        var signed = 0
                        while true {
                            do {
                                let signatures = try await signer.sign(digests: digests, credential: "k", mechanism: .ecdsa(.sha256))
                                for signature in signatures where try !verify(signature, message: message, publicKey: spki, mechanism: .ecdsa(.sha256)) {
                                    return (signed, .moduleError)
                                }
                                if signed == 0 { startedContinuation.yield() }
                                signed += 1
                            } catch let error as PKCS11Error {
                                return (signed, error.code)
                            }
                        }
                    }
                }
                var iterator = started.makeAsyncIterator()
                for _ in 0..<tasks { await iterator.next() }
                await server.kill()
                for try await result in group {
                    #expect(result.signed > 0)
                    #expect(result.failure == .tokenUnavailable)
                }
            }
            try await server.start()
            let signatures = try await signer.sign(digests: Array(repeating: Array(SHA256.hash(data: message)), count: 40), credential: "k", mechanism: .ecdsa(.sha256))
            for signature in signatures {
                #expect(try verify(signature, message: message, publicKey: spki, mechanism: .ecdsa(.sha256)))
            }
        }
    }
}
