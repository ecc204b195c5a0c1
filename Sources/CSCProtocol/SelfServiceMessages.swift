/// `POST /selfservice/v1/status` (and every self-service route that needs only username and password).
public struct HolderLoginRequest: Codable, Sendable, Equatable {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }
}

/// One credential as the holder sees it (`selfservice/v1/status`, `renew`).
public struct CredentialStatusView: Codable, Sendable, Equatable {
    public var credentialID: String
    /// `active`, `suspended`, `revoked`.
    public var status: String
    public var serialNumber: String
    /// ISO 8601.
    public var notBefore: String
    public var notAfter: String
    public var revocationReason: String?

    public init(credentialID: String, status: String, serialNumber: String, notBefore: String, notAfter: String, revocationReason: String?) {
        self.credentialID = credentialID
        self.status = status
        self.serialNumber = serialNumber
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.revocationReason = revocationReason
    }
}

/// A holder's state and credentials (`selfservice/v1/status`).
public struct HolderStatusResponse: Codable, Sendable, Equatable {
    /// `active`, `active_expiring`, `suspended`…
    public var state: String
    /// The state in words.
    public var description: String
    public var username: String
    public var credentials: [CredentialStatusView]

    public init(state: String, description: String, username: String, credentials: [CredentialStatusView]) {
        self.state = state
        self.description = description
        self.username = username
        self.credentials = credentials
    }
}
