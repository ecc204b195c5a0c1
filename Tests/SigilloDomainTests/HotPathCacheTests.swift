import Crypto
import Foundation
import PKCS11
@testable import SigilloDomain
import SigilloSQLite
import SigilloTestSupport
import Testing

/// Issue 16: signHash keeps the SAD, the credential and the bearer token in memory once it has read them. Each test
/// changes the database behind a node that has them cached (another node's change, or a store call no use case of
/// this node saw) and checks the next signature sees the change; with a cache that were trusted as it stands, each
/// would sign.
@Suite("signHash's cache is checked against the database on every signature")
struct HotPathCacheTests {
    private func digest(_ text: String) -> [UInt8] { Array(SHA256.hash(data: Data(text.utf8))) }

    private func used(_ fixture: ServiceFixture, _ sad: String) async throws -> Int {
        try #require(try await fixture.store.sad(idHash: Array(SHA256.hash(data: Data(sad.utf8))))).used
    }

    /// A holder with a SAD for three hashes, one of them signed on `fixture.service` (so its cache holds SAD and credential).
    private func signedOnce(_ fixture: ServiceFixture, token: String? = nil) async throws -> (ServiceFixture.ActiveHolder, String, [[UInt8]]) {
        let active = try await fixture.activeHolder(name: "Cora")
        let hashes = [self.digest("a"), self.digest("b"), self.digest("c")]
        let auth = try await fixture.service.authorization.authorize(holderID: active.holder.id, credentialID: active.credential.id, numSignatures: 3, hashes: hashes,
                                                                     hashAlgorithm: .sha256, password: active.password, otp: fixture.otp(active))
        _ = try await fixture.service.signing.signHash(holderID: active.holder.id, credentialID: active.credential.id, sad: auth.sad, hashes: [hashes[0]],
                                                       mechanism: .ecdsa(.sha256))
        #expect(try await self.used(fixture, auth.sad) == 1)
        return (active, auth.sad, hashes)
    }

    @Test("a credential suspended behind a node's back (its SAD kept) is refused by that node at the next signature, and usable again once active")
    func suspendedBehindTheCache() async throws {
        let fixture = try await ServiceFixture()
        let (active, sad, hashes) = try await self.signedOnce(fixture)
        func sign(_ hash: [UInt8]) async throws {
            _ = try await fixture.service.signing.signHash(holderID: active.holder.id, credentialID: active.credential.id, sad: sad, hashes: [hash], mechanism: .ecdsa(.sha256))
        }
        // A bare status change (no use case of this node: its cache still says active, the SAD is not deleted).
        try await fixture.store.setCredentialStatus(id: active.credential.id, status: .suspended)
        #expect(await errorCode { try await sign(hashes[1]) } == .credentialDisabled)
        #expect(try await self.used(fixture, sad) == 1, "nothing spent for a refused request")
        try await fixture.store.setCredentialStatus(id: active.credential.id, status: .active)
        try await sign(hashes[1])
        #expect(try await self.used(fixture, sad) == 2)
        let refused = try await fixture.store.auditRecords().filter { $0.event.action == "signature.sign" && $0.event.outcome == "refused" }
        #expect(refused.count == 1 && refused.first?.event.details.contains("suspended") == true)
    }

    @Test("a SAD this node cached is no OAuth2 credential token on the fast path either: refused as one, nothing spent, and it still signs as a SAD")
    func cachedSADIsNoCredentialToken() async throws {
        let fixture = try await ServiceFixture()
        let (active, sad, hashes) = try await self.signedOnce(fixture)
        // SAD and credential are cached now: presented as a credential token (what signHash is told for an OAuth2 bearer),
        // the cached record's missing client must refuse it before any spending.
        #expect(await errorCode {
            _ = try await fixture.service.signing.signHash(holderID: active.holder.id, credentialID: active.credential.id, sad: sad, hashes: [hashes[1]],
                                                           mechanism: .ecdsa(.sha256), credentialToken: true)
        } == .invalidSAD)
        #expect(try await self.used(fixture, sad) == 1, "nothing spent for a refused request")
        _ = try await fixture.service.signing.signHash(holderID: active.holder.id, credentialID: active.credential.id, sad: sad, hashes: [hashes[1]],
                                                       mechanism: .ecdsa(.sha256))
        #expect(try await self.used(fixture, sad) == 2)
    }

    @Test("a credential revoked on another node: the node that cached it refuses the next signature with the same SAD")
    func revokedOnAnotherNode() async throws {
        let fixture = try await ServiceFixture()
        let nodeB = try await fixture.domain(holderKeys: .wrapped)
        let (active, sad, hashes) = try await self.signedOnce(fixture)
        _ = try await nodeB.lifecycle.revoke(credentialID: active.credential.id, reason: .keyCompromise, actor: "operator:test")
        #expect(await errorCode {
            _ = try await fixture.service.signing.signHash(holderID: active.holder.id, credentialID: active.credential.id, sad: sad, hashes: [hashes[1]], mechanism: .ecdsa(.sha256))
        } != nil)
        #expect(try await fixture.store.sad(idHash: Array(SHA256.hash(data: Data(sad.utf8)))) == nil)
    }

    @Test("an access token this node cached, revoked on another node or by a password change: the next signHash is refused as invalid_token",
          arguments: ["revoked on node B", "every token of the holder revoked (password change)"])
    func tokenRevokedBehindTheCache(how: String) async throws {
        let fixture = try await ServiceFixture()
        let nodeB = try await fixture.domain(holderKeys: .wrapped)
        let (active, sad, hashes) = try await self.signedOnce(fixture)
        let login = try await fixture.service.authentication.issueAccessToken(username: active.username, password: active.password)
        // The bearer check read it once: from now on this node has it cached.
        #expect(try await fixture.service.authentication.holderID(accessToken: login.token) == active.holder.id)
        #expect(fixture.service.authentication.cachedHolderID(accessToken: login.token) == active.holder.id)
        func sign(_ hash: [UInt8]) async throws {
            _ = try await fixture.service.signing.signHash(holderID: active.holder.id, credentialID: active.credential.id, sad: sad, hashes: [hash],
                                                           mechanism: .ecdsa(.sha256), accessToken: login.token)
        }
        try await sign(hashes[1])
        #expect(try await self.used(fixture, sad) == 2)

        if how == "revoked on node B" {
            try await nodeB.authentication.revokeAccessToken(login.token)
        } else {
            try await fixture.store.revokeAccessTokens(holderID: active.holder.id)
        }
        #expect(fixture.service.authentication.cachedHolderID(accessToken: login.token) == active.holder.id, "this node was not told")
        #expect(await errorCode { try await sign(hashes[2]) } == .invalidToken)
        #expect(try await self.used(fixture, sad) == 2, "nothing spent for a refused request")
        // The refusal dropped it: the next request's bearer check reads the database.
        #expect(fixture.service.authentication.cachedHolderID(accessToken: login.token) == nil)
        #expect(await errorCode { _ = try await fixture.service.authentication.holderID(accessToken: login.token) } == .invalidToken)
    }

    @Test("an expired access token in the cache is not used, and expired_token is the answer")
    func expiredToken() async throws {
        let fixture = try await ServiceFixture()
        let (active, sad, hashes) = try await self.signedOnce(fixture)
        let login = try await fixture.service.authentication.issueAccessToken(username: active.username, password: active.password, lifetime: 60)
        #expect(try await fixture.service.authentication.holderID(accessToken: login.token) == active.holder.id)
        fixture.clock.advance(61)
        #expect(fixture.service.authentication.cachedHolderID(accessToken: login.token) == nil)
        #expect(await errorCode {
            _ = try await fixture.service.signing.signHash(holderID: active.holder.id, credentialID: active.credential.id, sad: sad, hashes: [hashes[1]],
                                                           mechanism: .ecdsa(.sha256), accessToken: login.token)
        } == .expiredToken)
        #expect(try await self.used(fixture, sad) == 1)
    }

    @Test("the SAD spent on another node: the cached SAD does not give a signature more than numSignatures")
    func sadSpentOnAnotherNode() async throws {
        let fixture = try await ServiceFixture()
        let nodeB = try await fixture.domain(holderKeys: .wrapped)
        let (active, sad, hashes) = try await self.signedOnce(fixture)
        _ = try await nodeB.signing.signHash(holderID: active.holder.id, credentialID: active.credential.id, sad: sad, hashes: [hashes[1], hashes[2]], mechanism: .ecdsa(.sha256))
        #expect(try await self.used(fixture, sad) == 3)
        #expect(await errorCode {
            _ = try await fixture.service.signing.signHash(holderID: active.holder.id, credentialID: active.credential.id, sad: sad, hashes: [hashes[0]], mechanism: .ecdsa(.sha256))
        } == .invalidSAD)
        #expect(try await self.used(fixture, sad) == 3)
        // One audit record per accepted request, listing how many it signed.
        let ok = try await fixture.store.auditRecords().filter { $0.event.action == "signature.sign" && $0.event.outcome == "ok" }.map(\.event.details)
        #expect(ok == ["signatures=1", "signatures=2"])
    }
}
