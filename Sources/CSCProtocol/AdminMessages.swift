/// Admin API shapes. Dates are ISO 8601 strings (UTC).
public enum AdminAPI {
    public struct CreateHolder: Codable, Sendable {
        public var givenName: String
        public var surname: String
        public var fiscalCode: String
        public var email: String
        public var mobile: String
        /// The operator identified the person at the desk: the holder starts `recognized`, ready to invite.
        public var recognized: Bool?

        public init(givenName: String, surname: String, fiscalCode: String, email: String, mobile: String, recognized: Bool? = nil) {
            self.givenName = givenName
            self.surname = surname
            self.fiscalCode = fiscalCode
            self.email = email
            self.mobile = mobile
            self.recognized = recognized
        }
    }

    /// An enrolment step: `payment_registered`, `awaiting_processing`, `awaiting_documents` or `recognized`.
    public struct Transition: Codable, Sendable {
        public var state: String
        public init(state: String) { self.state = state }
    }

    /// A new OTP device for a holder: `totp`, `sms`, or `hotp` with the token's serial and hex seed.
    public struct Rebind: Codable, Sendable {
        public var device: String
        public var serial: String?
        public var seed: String?
        public init(device: String, serial: String? = nil, seed: String? = nil) {
            self.device = device
            self.serial = serial
            self.seed = seed
        }
    }

    /// A started device binding: the holder proves it with a code (`rebind/complete`).
    public struct RebindStarted: Codable, Sendable {
        public var token: String
        public var device: String
        public var secret: String?
        public var otpauthURI: String?
        public var smsSentTo: String?
        public init(token: String, device: String, secret: String?, otpauthURI: String?, smsSentTo: String?) {
            self.token = token
            self.device = device
            self.secret = secret
            self.otpauthURI = otpauthURI
            self.smsSentTo = smsSentTo
        }
    }

    public struct RebindComplete: Codable, Sendable {
        public var token: String
        public var otp: String
        public init(token: String, otp: String) {
            self.token = token
            self.otp = otp
        }
    }

    public struct ChangeMobile: Codable, Sendable {
        public var mobile: String
        public init(mobile: String) { self.mobile = mobile }
    }

    public struct Revoke: Codable, Sendable {
        public var reason: String
        public init(reason: String) { self.reason = reason }
    }

    /// A holder as operators see it (never the password hash).
    public struct HolderView: Codable, Sendable, Equatable {
        public var id: String
        public var username: String?
        public var givenName: String
        public var surname: String
        public var fiscalCode: String
        public var email: String
        public var mobile: String
        public var state: String
        public var createdAt: String

        public init(id: String, username: String?, givenName: String, surname: String, fiscalCode: String, email: String, mobile: String, state: String, createdAt: String) {
            self.id = id
            self.username = username
            self.givenName = givenName
            self.surname = surname
            self.fiscalCode = fiscalCode
            self.email = email
            self.mobile = mobile
            self.state = state
            self.createdAt = createdAt
        }
    }

    public struct HolderList: Codable, Sendable {
        public var holders: [HolderView]

        public init(holders: [HolderView]) {
            self.holders = holders
        }
    }

    public struct Invitation: Codable, Sendable {
        public var holderID: String
        public var activationCode: String
        public var expiresAt: String

        public init(holderID: String, activationCode: String, expiresAt: String) {
            self.holderID = holderID
            self.activationCode = activationCode
            self.expiresAt = expiresAt
        }
    }

    public struct CredentialView: Codable, Sendable, Equatable {
        public var id: String
        public var holderID: String
        public var status: String
        public var keyAlgorithm: String
        public var serialNumber: String
        public var subject: String?
        public var notBefore: String
        public var notAfter: String
        public var multisign: Int
        public var passwordFailures: Int
        public var otpFailures: Int
        public var locked: Bool
        public var revocationReason: String?
        public var revokedAt: String?

        public init(id: String, holderID: String, status: String, keyAlgorithm: String, serialNumber: String, subject: String?, notBefore: String, notAfter: String, multisign: Int, passwordFailures: Int, otpFailures: Int, locked: Bool, revocationReason: String?, revokedAt: String?) {
            self.id = id
            self.holderID = holderID
            self.status = status
            self.keyAlgorithm = keyAlgorithm
            self.serialNumber = serialNumber
            self.subject = subject
            self.notBefore = notBefore
            self.notAfter = notAfter
            self.multisign = multisign
            self.passwordFailures = passwordFailures
            self.otpFailures = otpFailures
            self.locked = locked
            self.revocationReason = revocationReason
            self.revokedAt = revokedAt
        }
    }

    public struct CredentialList: Codable, Sendable {
        public var credentials: [CredentialView]

        public init(credentials: [CredentialView]) {
            self.credentials = credentials
        }
    }

    /// One audit record (a line of `audit/export`).
    public struct AuditLine: Codable, Sendable {
        public var seq: Int64
        public var time: String
        public var actor: String
        public var action: String
        public var target: String
        public var outcome: String
        public var details: String
        public var prevHash: String
        public var hash: String

        public init(seq: Int64, time: String, actor: String, action: String, target: String, outcome: String, details: String, prevHash: String, hash: String) {
            self.seq = seq
            self.time = time
            self.actor = actor
            self.action = action
            self.target = target
            self.outcome = outcome
            self.details = details
            self.prevHash = prevHash
            self.hash = hash
        }
    }

    /// Where the token's audit anchor points: the latest checkpoint record kept outside the database.
    public struct AuditAnchorView: Codable, Sendable, Equatable {
        public var seq: Int64
        public var hash: String

        public init(seq: Int64, hash: String) {
            self.seq = seq
            self.hash = hash
        }
    }

    /// The answer of `POST audit/anchor/reset`: where the anchor pointed, and where it points now.
    public struct AuditAnchorReset: Codable, Sendable {
        public var previous: AuditAnchorView?
        public var anchor: AuditAnchorView?

        public init(previous: AuditAnchorView?, anchor: AuditAnchorView?) {
            self.previous = previous
            self.anchor = anchor
        }
    }

    public struct WhoAmI: Codable, Sendable {
        public var `operator`: String

        public init(`operator`: String) {
            self.operator = `operator`
        }
    }

    /// What one run of the lifecycle jobs did (`POST lifecycle/run`).
    /// `POST keys/migrate`: token-object holder keys moved to wrapped keys (each re-keyed, see `sigillo admin keys migrate`).
    public struct KeyMigration: Codable, Sendable, Equatable {
        public struct Migrated: Codable, Sendable, Equatable {
            public var old: String
            public var new: String
            public init(old: String, new: String) {
                self.old = old
                self.new = new
            }
        }
        public struct Skipped: Codable, Sendable, Equatable {
            public var credentialID: String
            public var reason: String
            public init(credentialID: String, reason: String) {
                self.credentialID = credentialID
                self.reason = reason
            }
        }
        public var migrated: [Migrated]
        public var skipped: [Skipped]

        public init(migrated: [Migrated], skipped: [Skipped]) {
            self.migrated = migrated
            self.skipped = skipped
        }
    }

    public struct LifecycleReport: Codable, Sendable, Equatable {
        public var remindersSent: Int
        public var expiredNotices: Int
        public var stateChanges: Int

        public init(remindersSent: Int, expiredNotices: Int, stateChanges: Int) {
            self.remindersSent = remindersSent
            self.expiredNotices = expiredNotices
            self.stateChanges = stateChanges
        }
    }
}
