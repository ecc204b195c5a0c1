import Foundation

/// The token endpoint's work (a code exchanged for a token) and revocation (RFC 7009).
extension OAuthServer {
    // MARK: Tokens

    /// Exchanges a code (`grant_type=authorization_code`) of an authenticated client: same client, same redirect URI,
    /// and the PKCE verifier whose S256 is the request's challenge. A code is spent once; a replayed code also deletes
    /// or revokes the token it gave (RFC 6749 §4.1.2).
    ///
    /// - Throws: `OAuthError` `invalid_grant` (or `invalid_request` for a missing parameter).
    public func exchange(code: String, redirectURI: String?, codeVerifier: String?, client: OAuthClient) async throws -> OAuthToken {
        let now = self.clock.now()
        let hash = Secrets.digest(code)
        guard let grant = try await self.store.oauthGrant(idHash: hash), grant.kind == .code, grant.clientID == client.id else {
            throw try await self.refuse(client, OAuthError.invalidGrant("the authorization code is not valid"))
        }
        if grant.used {
            if let tokenHash = grant.tokenHash {
                try await self.store.deleteSAD(idHash: tokenHash)
                try await self.store.revokeAccessToken(tokenHash: tokenHash)
            }
            throw try await self.refuse(client, OAuthError.invalidGrant("the authorization code was already used: the token it gave is revoked"))
        }
        guard grant.expiresAt > now else { throw try await self.refuse(client, OAuthError.invalidGrant("the authorization code has expired")) }
        let payload = try Self.decode(grant)
        let request = payload.request
        guard let redirectURI else { throw OAuthError.invalidRequest("redirect_uri is missing") }
        guard redirectURI == request.redirectURI else { throw try await self.refuse(client, OAuthError.invalidGrant("redirect_uri differs from the authorization request's")) }
        guard let codeVerifier else { throw OAuthError.invalidRequest("code_verifier is missing (PKCE is required)") }
        guard Self.isCodeVerifier(codeVerifier), ConstantTime.equals(Self.s256(codeVerifier), request.codeChallenge) else {
            throw try await self.refuse(client, OAuthError.invalidGrant("the code_verifier does not match the code_challenge"))
        }
        guard let holderID = payload.holderID, let authorizedAt = payload.authorizedAt else { throw OAuthError.invalidGrant("the authorization code is not valid") }
        let token = Secrets.token()
        guard try await self.store.takeOAuthGrant(idHash: hash, kind: .code, now: now, tokenHash: Secrets.digest(token)) else {
            throw try await self.refuse(client, OAuthError.invalidGrant("the authorization code was already used"))
        }
        let expiresIn: Int
        if let scope = request.credential {
            // Suspended, revoked or expired since the approval: no token.
            do {
                _ = try await self.credentials.usable(scope.credentialID, holderID: holderID)
            } catch let error as SigilloError {
                throw try await self.refuse(client, OAuthError.invalidGrant("the credential cannot sign now: \(error.message)"))
            }
            let expiresAt = authorizedAt.addingTimeInterval(min(self.settings.sadLifetime, self.settings.sadMaxLifetime))
            guard expiresAt > now else { throw OAuthError.invalidGrant("the holder's authorization has expired") }
            try await self.store.insertSAD(SADRecord(
                idHash: Secrets.digest(token), holderID: holderID, credentialID: scope.credentialID, hashAlgorithm: scope.hashAlgorithm, hashes: scope.hashes,
                numSignatures: scope.numSignatures, used: 0, expiresAt: expiresAt, authorizedAt: authorizedAt, clientID: client.id))
            expiresIn = Int(expiresAt.timeIntervalSince(now).rounded())
        } else {
            try await self.store.createAccessToken(tokenHash: Secrets.digest(token), holderID: holderID, expiresAt: now.addingTimeInterval(Self.serviceTokenLifetime),
                                                   clientID: client.id)
            expiresIn = Int(Self.serviceTokenLifetime)
        }
        try await self.audit.record(holderID, "oauth2.token", target: request.credential?.credentialID ?? holderID, outcome: "ok",
                                    details: "client=\(client.id) scope=\(request.scope.rawValue)")
        return OAuthToken(accessToken: token, expiresIn: expiresIn, request: request)
    }

    /// Revokes a token the client was issued (RFC 7009): a credential token is deleted, a service token revoked. A token
    /// that is unknown, or another client's, changes nothing and gets the same answer.
    public func revoke(token: String, client: OAuthClient) async throws {
        let hash = Secrets.digest(token)
        if let sad = try await self.store.sad(idHash: hash), sad.clientID == client.id {
            try await self.store.deleteSAD(idHash: hash)
            try await self.audit.record(sad.holderID, "oauth2.revoke", target: sad.credentialID, outcome: "ok", details: "client=\(client.id) scope=credential")
        } else if try await self.store.accessTokenClient(tokenHash: hash) == client.id, let holderID = try await self.store.accessToken(tokenHash: hash)?.holderID {
            try await self.store.revokeAccessToken(tokenHash: hash)
            try await self.audit.record(holderID, "oauth2.revoke", target: holderID, outcome: "ok", details: "client=\(client.id) scope=service")
        } else {
            try await self.audit.record("anonymous", "oauth2.revoke", target: client.id, outcome: "ignored")
        }
    }
}
