import Foundation
import SigilloDomain

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

        init(_ holder: Holder) {
            self.id = holder.id
            self.username = holder.username
            self.givenName = holder.givenName
            self.surname = holder.surname
            self.fiscalCode = holder.fiscalCode
            self.email = holder.email
            self.mobile = holder.mobile
            self.state = holder.state.rawValue
            self.createdAt = AdminAPI.time(holder.createdAt)
        }
    }

    public struct HolderList: Codable, Sendable {
        public var holders: [HolderView]
    }

    public struct Invitation: Codable, Sendable {
        public var holderID: String
        public var activationCode: String
        public var expiresAt: String
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

        init(_ credential: Credential, subject: String?) {
            self.id = credential.id
            self.holderID = credential.holderID
            self.status = credential.status.rawValue
            self.keyAlgorithm = credential.keyAlgorithm.rawValue
            self.serialNumber = credential.serialNumber
            self.subject = subject
            self.notBefore = AdminAPI.time(credential.notBefore)
            self.notAfter = AdminAPI.time(credential.notAfter)
            self.multisign = credential.multisign
            self.passwordFailures = credential.passwordFailures
            self.otpFailures = credential.otpFailures
            self.locked = credential.pinLocked || credential.otpLocked
            self.revocationReason = credential.revocationReason?.rawValue
            self.revokedAt = credential.revokedAt.map(AdminAPI.time)
        }
    }

    public struct CredentialList: Codable, Sendable {
        public var credentials: [CredentialView]
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

        init(_ record: AuditRecord) {
            self.seq = record.sequence
            self.time = AdminAPI.time(record.time)
            self.actor = record.event.actor
            self.action = record.event.action
            self.target = record.event.target
            self.outcome = record.event.outcome
            self.details = record.event.details
            self.prevHash = record.previousHash
            self.hash = record.hash
        }
    }

    public struct WhoAmI: Codable, Sendable {
        public var `operator`: String
    }

    static func time(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}
