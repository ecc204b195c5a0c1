import Foundation
import PKCS11
import SigilloDomain
import SigilloTestSupport
import Testing

extension StoreContractTests {
    // MARK: OAuthStore (issue 15)

    private func client(_ fixture: StoreFixture) -> OAuthClient {
        OAuthClient(id: "client-\(UUID().uuidString.prefix(8))", name: "Wallet", secretHash: randomBytes(32),
                    redirectURIs: ["https://wallet.example/cb", "eu.example.wallet:/cb"], createdAt: Date(timeIntervalSince1970: Double(Int(fixture.now.timeIntervalSince1970))))
    }

    private func grant(_ kind: OAuthGrantKind, clientID: String, expiresAt: Date) -> OAuthGrant {
        OAuthGrant(idHash: randomBytes(32), kind: kind, clientID: clientID, payload: Data(#"{"request":{}}"#.utf8), expiresAt: expiresAt)
    }

    @Test("OAuthStore: clients are kept with their redirect URIs in order; an id is taken once; removal says whether it was there", arguments: StoreKind.allCases)
    func oauthClients(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let first = self.client(fixture)
        var second = self.client(fixture)
        second.createdAt = first.createdAt.addingTimeInterval(1)
        try await store.insertOAuthClient(first)
        try await store.insertOAuthClient(second)
        #expect(try await store.oauthClient(id: first.id) == first)
        #expect(try await store.oauthClient(id: "nobody") == nil)
        #expect(try await store.oauthClients() == [first, second])
        let duplicate = try await sigilloError { try await store.insertOAuthClient(first) }
        #expect(duplicate?.code == .conflict)
        #expect(try await store.deleteOAuthClient(id: first.id))
        #expect(try await !store.deleteOAuthClient(id: first.id))
        #expect(try await store.oauthClients() == [second])
    }

    @Test("OAuthStore: of 20 concurrent takers of a grant exactly one wins, only for its kind and before it expires; the token hash is kept",
          arguments: StoreKind.allCases)
    func oauthGrantsTakenOnce(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let code = self.grant(.code, clientID: "c1", expiresAt: now.addingTimeInterval(60))
        try await store.insertOAuthGrant(code, now: now)
        #expect(try await store.oauthGrant(idHash: code.idHash) == code)
        #expect(try await !store.takeOAuthGrant(idHash: code.idHash, kind: .pending, now: now, tokenHash: nil), "another kind")
        let token = randomBytes(32)
        let wins = try await concurrently(20) { _ in try await store.takeOAuthGrant(idHash: code.idHash, kind: .code, now: now, tokenHash: token) }
        #expect(wins.filter { $0 }.count == 1)
        let used = try #require(try await store.oauthGrant(idHash: code.idHash))
        #expect(used.used && used.tokenHash == token)
        #expect(try await !store.takeOAuthGrant(idHash: code.idHash, kind: .code, now: now, tokenHash: randomBytes(32)))
        #expect(try await store.oauthGrant(idHash: code.idHash)?.tokenHash == token, "a failed take changes nothing")

        // Expiry: not taken at or after expiresAt.
        let pushed = self.grant(.pushedRequest, clientID: "c1", expiresAt: now.addingTimeInterval(60))
        try await store.insertOAuthGrant(pushed, now: now)
        #expect(try await !store.takeOAuthGrant(idHash: pushed.idHash, kind: .pushedRequest, now: pushed.expiresAt, tokenHash: nil))
        #expect(try await store.takeOAuthGrant(idHash: pushed.idHash, kind: .pushedRequest, now: pushed.expiresAt.addingTimeInterval(-1), tokenHash: nil))
        #expect(try await !store.takeOAuthGrant(idHash: randomBytes(32), kind: .code, now: now, tokenHash: nil))

        // Records expired over an hour ago are forgotten when another is stored.
        try await store.insertOAuthGrant(self.grant(.pending, clientID: "c1", expiresAt: now.addingTimeInterval(600)), now: now.addingTimeInterval(3661))
        #expect(try await store.oauthGrant(idHash: code.idHash) == nil)
    }

    @Test("OAuthStore: removing a client deletes its records and credential tokens and revokes its service tokens, no one else's",
          arguments: StoreKind.allCases)
    func oauthClientRemoval(kind: StoreKind) async throws {
        let fixture = try await makeStore(kind)
        let store = fixture.store
        let now = fixture.now
        let (holder, _, credential) = try await fixture.activeHolder()
        let (mine, theirs) = (self.client(fixture), self.client(fixture))
        try await store.insertOAuthClient(mine)
        try await store.insertOAuthClient(theirs)
        var sads: [String: SADRecord] = [:]
        var tokens: [String: [UInt8]] = [:]
        var grants: [String: OAuthGrant] = [:]
        for client in [mine, theirs] {
            let sad = SADRecord(idHash: randomBytes(32), holderID: holder.id, credentialID: credential.id, hashAlgorithm: .sha256, hashes: [randomBytes(32)],
                                numSignatures: 1, used: 0, expiresAt: now.addingTimeInterval(300), authorizedAt: now, clientID: client.id)
            try await store.insertSAD(sad)
            sads[client.id] = sad
            tokens[client.id] = randomBytes(32)
            try await store.createAccessToken(tokenHash: tokens[client.id]!, holderID: holder.id, expiresAt: now.addingTimeInterval(1800), clientID: client.id)
            grants[client.id] = self.grant(.code, clientID: client.id, expiresAt: now.addingTimeInterval(60))
            try await store.insertOAuthGrant(grants[client.id]!, now: now)
        }
        let login = randomBytes(32)
        try await store.createAccessToken(tokenHash: login, holderID: holder.id, expiresAt: now.addingTimeInterval(1800))
        #expect(try await store.sad(idHash: sads[mine.id]!.idHash)?.clientID == mine.id)
        #expect(try await store.accessTokenClient(tokenHash: tokens[mine.id]!) == mine.id)
        #expect(try await store.accessTokenClient(tokenHash: login) == nil)

        #expect(try await store.deleteOAuthClient(id: mine.id))
        #expect(try await store.sad(idHash: sads[mine.id]!.idHash) == nil)
        #expect(try await store.accessToken(tokenHash: tokens[mine.id]!) == nil)
        #expect(try await store.oauthGrant(idHash: grants[mine.id]!.idHash) == nil)
        #expect(try await store.sad(idHash: sads[theirs.id]!.idHash) == sads[theirs.id])
        #expect(try await store.accessToken(tokenHash: tokens[theirs.id]!) != nil)
        #expect(try await store.oauthGrant(idHash: grants[theirs.id]!.idHash) != nil)
        #expect(try await store.accessToken(tokenHash: login) != nil)

        // deleteSAD removes one SAD.
        try await store.deleteSAD(idHash: sads[theirs.id]!.idHash)
        #expect(try await store.sad(idHash: sads[theirs.id]!.idHash) == nil)
    }
}
