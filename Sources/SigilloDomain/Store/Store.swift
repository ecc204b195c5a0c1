import Foundation

/// Everything the domain keeps: every narrow store below, as one database implements them. SQLite (`SQLiteStore`) is the embedded default; a PostgreSQL implementation
/// implements the same protocol with the same SQL shapes (plain tables, integer seconds, byte blobs, and
/// compare-and-set `UPDATE`s that hold across nodes).
///
/// Operations that must be atomic are single methods here (consuming a SAD, completing an activation,
/// advancing an OTP counter, counting a failure), so no caller can interleave half of one.
public typealias Store = HolderStore & EnrollmentStore & CredentialStore & AttemptStore & OTPStore & SADStore & AccessTokenStore & PasswordResetStore & ThrottleStore & MailOutboxStore & AuditStore & PKIStateStore & OAuthStore
