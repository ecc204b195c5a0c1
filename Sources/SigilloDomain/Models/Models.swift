import Foundation
import PKCS11

/// Where a holder is in their life with the service: the enrolment an operator drives, then the life of the
/// certificate. `HolderState.allowed` lists every legal move; anything else is refused (`illegal_transition`).
public enum HolderState: String, Sendable, Codable, CaseIterable {
    /// Order created (the holder's data is in; nothing paid yet).
    case created
    case paymentRegistered = "payment_registered"
    case awaitingProcessing = "awaiting_processing"
    /// Waiting for the recognition before a public official (documents, de visu identification).
    case awaitingDocuments = "awaiting_documents"
    /// Identity recognized: the holder may be invited.
    case recognized
    /// An activation invitation was sent (valid 12 months).
    case invited
    /// Activated: password, OTP device, key and certificate in place.
    case active
    /// Active, and the certificate expires within 90 days (reminders go out every 10 days).
    case expiring = "active_expiring"
    /// The certificate expired without renewal: a new order is needed.
    case expired
    /// Every credential suspended (certificateHold), by an operator or by the holder.
    case suspended
    /// Revoked for good: a new order is needed.
    case revoked

    /// The states the operator's enrolment commands walk through, in order.
    public static let enrolment: [HolderState] = [.created, .paymentRegistered, .awaitingProcessing, .awaitingDocuments, .recognized, .invited]

    /// Legal next states.
    public var allowed: Set<HolderState> {
        switch self {
        case .created: [.paymentRegistered, .revoked]
        case .paymentRegistered: [.awaitingProcessing, .revoked]
        case .awaitingProcessing: [.awaitingDocuments, .revoked]
        case .awaitingDocuments: [.recognized, .revoked]
        case .recognized: [.invited, .revoked]
        // A new invitation replaces an old (or expired) one.
        case .invited: [.invited, .active, .revoked]
        case .active: [.expiring, .expired, .suspended, .revoked]
        // Renewal brings an expiring holder back to active.
        case .expiring: [.active, .expired, .suspended, .revoked]
        case .suspended: [.active, .expiring, .expired, .revoked]
        case .expired: [.revoked]
        case .revoked: []
        }
    }

    public func canMove(to next: HolderState) -> Bool { self.allowed.contains(next) }

    /// May log in and sign (given an active credential with a valid certificate).
    public var canSign: Bool { self == .active || self == .expiring }

    /// Activated at some point: has a username and password.
    public var isActivated: Bool { [.active, .expiring, .expired, .suspended, .revoked].contains(self) }

    /// Words for people (Italian first, as the service speaks).
    public var label: String {
        switch self {
        case .created: "Ordine creato / order created"
        case .paymentRegistered: "Pagamento registrato / payment registered"
        case .awaitingProcessing: "In attesa di lavorazione / awaiting processing"
        case .awaitingDocuments: "In attesa di documenti e riconoscimento / awaiting documents and recognition"
        case .recognized: "Riconosciuto / recognized"
        case .invited: "Invito di attivazione inviato / activation invitation sent"
        case .active: "Attivo / active"
        case .expiring: "Attivo, in scadenza / active, expiring"
        case .expired: "Scaduto / expired"
        case .suspended: "Sospeso / suspended"
        case .revoked: "Revocato / revoked"
        }
    }
}

/// A natural person who signs. Email and mobile number belong to one holder only.
public struct Holder: Sendable, Equatable, Codable {
    public var id: String
    public var username: String?
    public var givenName: String
    public var surname: String
    /// Italian fiscal code (codice fiscale), upper case.
    public var fiscalCode: String
    public var email: String
    /// E.164 mobile number (+39...).
    public var mobile: String
    public var state: HolderState
    public var passwordHash: String?
    public var createdAt: Date

    /// "Given Surname", as mails and pages greet the holder.
    public var fullName: String { "\(self.givenName) \(self.surname)" }

    public init(id: String, username: String? = nil, givenName: String, surname: String, fiscalCode: String, email: String, mobile: String, state: HolderState = .created, passwordHash: String? = nil, createdAt: Date) {
        self.id = id
        self.username = username
        self.givenName = givenName
        self.surname = surname
        self.fiscalCode = fiscalCode
        self.email = email
        self.mobile = mobile
        self.state = state
        self.passwordHash = passwordHash
        self.createdAt = createdAt
    }
}

/// An activation invitation. Only the SHA-256 of its code is stored.
public struct Invitation: Sendable, Equatable {
    public var codeHash: [UInt8]
    public var holderID: String
    public var createdAt: Date
    public var expiresAt: Date
    public var usedAt: Date?
    /// The OTP device being bound during activation, before it is proven.
    public var pendingDevice: OTPDevice?

    public init(codeHash: [UInt8], holderID: String, createdAt: Date, expiresAt: Date, usedAt: Date? = nil, pendingDevice: OTPDevice? = nil) {
        self.codeHash = codeHash
        self.holderID = holderID
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.usedAt = usedAt
        self.pendingDevice = pendingDevice
    }
}

public enum OTPKind: String, Sendable, Codable, CaseIterable {
    /// Phone app, RFC 6238.
    case totp
    /// Hardware display token, RFC 4226.
    case hotp
    /// A code sent by SMS to the registered mobile number.
    case sms
}

/// An OTP device bound to a holder. `secret` is the shared seed (empty for SMS).
public struct OTPDevice: Sendable, Equatable {
    public var id: String
    public var holderID: String
    public var kind: OTPKind
    public var secret: [UInt8]
    public var algorithm: OTPAlgorithm
    public var digits: Int
    public var period: Int
    /// HOTP: the next counter expected. TOTP: unused.
    public var counter: UInt64
    /// TOTP: the last time step accepted (replay protection). HOTP: unused.
    public var lastStep: UInt64
    /// Hardware token serial number.
    public var serial: String?
    public var active: Bool

    public init(id: String, holderID: String, kind: OTPKind, secret: [UInt8], algorithm: OTPAlgorithm = .sha1, digits: Int = 6, period: Int = 30, counter: UInt64 = 0, lastStep: UInt64 = 0, serial: String? = nil, active: Bool = true) {
        self.id = id
        self.holderID = holderID
        self.kind = kind
        self.secret = secret
        self.algorithm = algorithm
        self.digits = digits
        self.period = period
        self.counter = counter
        self.lastStep = lastStep
        self.serial = serial
        self.active = active
    }
}

/// A hardware display token in the inventory (from the manufacturer's seed file): holders bind it by serial.
public struct HardwareToken: Sendable, Equatable {
    public var serial: String
    public var seed: [UInt8]
    public var digits: Int
    public var algorithm: OTPAlgorithm

    public init(serial: String, seed: [UInt8], digits: Int = 6, algorithm: OTPAlgorithm = .sha1) {
        self.serial = serial
        self.seed = seed
        self.digits = digits
        self.algorithm = algorithm
    }
}

public enum CredentialStatus: String, Sendable, Codable {
    case active
    case suspended
    case revoked
}

/// A signing credential: a key pair in the token and its certificate.
public struct Credential: Sendable, Equatable {
    public var id: String
    public var holderID: String
    public var keyAlgorithm: KeyAlgorithm
    /// `CKA_ID` of the key pair in the token.
    public var tokenKeyID: String
    public var certificateDER: [UInt8]
    public var serialNumber: String
    public var notBefore: Date
    public var notAfter: Date
    public var status: CredentialStatus
    /// Most signatures one authorization may allow.
    public var multisign: Int
    /// Why and when the credential was revoked (nil while it is not).
    public var revocationReason: RevocationReason? = nil
    public var revokedAt: Date? = nil
    /// When the credential was last suspended (nil if never, or reinstated since).
    public var suspendedAt: Date? = nil
    /// Days before expiry of the last expiry reminder sent (90, 80, … 0), nil if none yet.
    public var lastReminderDays: Int? = nil
    /// The private key wrapped under the token's KEK (`WrappedKey.encoded`), nil for a key kept as a token object
    /// (`holderKeys: token`, or before `sigillo admin keys migrate`) and once revoked (the blob is deleted).
    public var wrappedKey: [UInt8]? = nil
    /// The public key (SubjectPublicKeyInfo, DER) beside a wrapped key.
    public var publicKey: [UInt8]? = nil

    public init(id: String, holderID: String, keyAlgorithm: KeyAlgorithm, tokenKeyID: String, certificateDER: [UInt8], serialNumber: String, notBefore: Date, notAfter: Date, status: CredentialStatus, multisign: Int, revocationReason: RevocationReason? = nil, revokedAt: Date? = nil, suspendedAt: Date? = nil, lastReminderDays: Int? = nil, wrappedKey: [UInt8]? = nil, publicKey: [UInt8]? = nil) {
        self.id = id
        self.holderID = holderID
        self.keyAlgorithm = keyAlgorithm
        self.tokenKeyID = tokenKeyID
        self.certificateDER = certificateDER
        self.serialNumber = serialNumber
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.status = status
        self.multisign = multisign
        self.revocationReason = revocationReason
        self.revokedAt = revokedAt
        self.suspendedAt = suspendedAt
        self.lastReminderDays = lastReminderDays
        self.wrappedKey = wrappedKey
        self.publicKey = publicKey
    }
}

/// RFC 5280 CRL reason codes an operator may give for a revocation.
public enum RevocationReason: String, Sendable, Codable, CaseIterable {
    case unspecified
    case keyCompromise
    case affiliationChanged
    case superseded
    case cessationOfOperation
    case privilegeWithdrawn

    /// The `CRLReason` code of RFC 5280, section 5.3.1.
    public var code: Int {
        switch self {
        case .unspecified: 0
        case .keyCompromise: 1
        case .affiliationChanged: 3
        case .superseded: 4
        case .cessationOfOperation: 5
        case .privilegeWithdrawn: 9
        }
    }
}

/// Consecutive wrong answers that lock a holder's secret (password, OTP, user code); see `SecretAttempts`.
public enum Lockout {
    public static let limit = 5
}

/// A stored Signature Activation Data. Only the SHA-256 of the SAD itself is kept.
public struct SADRecord: Sendable, Equatable {
    public var idHash: [UInt8]
    public var holderID: String
    public var credentialID: String
    public var hashAlgorithm: HashAlgorithm
    /// The exact digests authorized.
    public var hashes: [[UInt8]]
    public var numSignatures: Int
    public var used: Int
    public var expiresAt: Date
    /// When the holder authorized it: extensions never take it past `DomainSettings.sadMaxLifetime` from here.
    public var authorizedAt: Date
    /// The OAuth2 client a credential-scoped access token (this SAD, used as the bearer token) was issued to; nil for a
    /// SAD from `credentials/authorize`.
    public var clientID: String?

    public init(idHash: [UInt8], holderID: String, credentialID: String, hashAlgorithm: HashAlgorithm, hashes: [[UInt8]], numSignatures: Int, used: Int, expiresAt: Date,
                authorizedAt: Date? = nil, clientID: String? = nil) {
        self.clientID = clientID
        self.authorizedAt = authorizedAt ?? expiresAt
        self.idHash = idHash
        self.holderID = holderID
        self.credentialID = credentialID
        self.hashAlgorithm = hashAlgorithm
        self.hashes = hashes
        self.numSignatures = numSignatures
        self.used = used
        self.expiresAt = expiresAt
    }
}

/// One audited event (no secrets in any field).
public struct AuditEvent: Sendable, Equatable {
    public var actor: String
    public var action: String
    public var target: String
    public var outcome: String
    public var details: String

    public init(actor: String, action: String, target: String, outcome: String, details: String = "") {
        self.actor = actor
        self.action = action
        self.target = target
        self.outcome = outcome
        self.details = details
    }
}

/// An audit event as stored: its place in the hash chain.
public struct AuditRecord: Sendable, Equatable {
    public var sequence: Int64
    public var time: Date
    public var event: AuditEvent
    public var previousHash: String
    public var hash: String

    public init(sequence: Int64, time: Date, event: AuditEvent, previousHash: String, hash: String) {
        self.sequence = sequence
        self.time = time
        self.event = event
        self.previousHash = previousHash
        self.hash = hash
    }
}
