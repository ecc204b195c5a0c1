import Foundation

/// The mails the service sends to holders, Italian first, then English. Each carries only what it is for: the
/// invitation and reset mails necessarily contain their link (with its code); none carries a password, an OTP
/// secret or the user code. Callers build links; templates never log.
public enum MailTemplates {
    /// The activation invitation: the link (with the activation code) and its expiry (12 months).
    public static func invitation(name: String, activationURL: String, expiresAt: Date) -> MailContent {
        let expiry = self.format(expiresAt)
        return MailContent(kind: "invitation", subject: "Attivazione della firma digitale remota / Activate your remote signature", body: self.body(
            italian: """
                Gentile \(name),

                la sua firma digitale remota è pronta per l'attivazione. Apra questo collegamento e segua le istruzioni:

                \(activationURL)

                Il collegamento è personale e scade il \(expiry). Se non ha richiesto la firma, ignori questo messaggio.
                """,
            english: """
                Dear \(name),

                your remote signature is ready to be activated. Open this link and follow the instructions:

                \(activationURL)

                The link is personal and expires on \(expiry). If you did not order a signature, ignore this message.
                """))
    }

    /// The certificate expiry reminder (from 90 days before, every 10 days).
    public static func expiryReminder(name: String, serialNumber: String, expiresAt: Date, renewalURL: String? = nil, daysLeft: Int? = nil) -> MailContent {
        let expiry = self.format(expiresAt)
        let subject = daysLeft.map { "Il suo certificato di firma scade tra \($0) giorni / Your signing certificate expires in \($0) days" }
            ?? "Il suo certificato di firma sta per scadere / Your signing certificate expires soon"
        return MailContent(kind: "expiry-reminder", subject: subject, body: self.body(
            italian: """
                Gentile \(name),

                il certificato di firma (numero di serie \(serialNumber)) scade il \(expiry). Dopo quella data non potrà più firmare.
                \(renewalURL.map { "Per rinnovarlo: \($0)" } ?? "Per rinnovarlo contatti il suo operatore.")
                """,
            english: """
                Dear \(name),

                your signing certificate (serial number \(serialNumber)) expires on \(expiry). After that date you can no longer sign.
                \(renewalURL.map { "To renew it: \($0)" } ?? "To renew it, contact your operator.")
                """))
    }

    /// The username reminder (lost-username recovery).
    public static func usernameReminder(name: String, username: String) -> MailContent {
        MailContent(kind: "username-reminder", subject: "Il suo nome utente / Your username", body: self.body(
            italian: """
                Gentile \(name),

                il nome utente della sua firma digitale remota è: \(username)

                Se non ha chiesto questo promemoria, nessuna azione è necessaria: la password non è cambiata.
                """,
            english: """
                Dear \(name),

                the username of your remote signature is: \(username)

                If you did not ask for this reminder, nothing needs to be done: your password has not changed.
                """))
    }

    /// The password reset link (with its one-time code) and its expiry.
    public static func passwordReset(name: String, resetURL: String, expiresAt: Date) -> MailContent {
        let expiry = self.format(expiresAt)
        return MailContent(kind: "password-reset", subject: "Reimpostazione della password / Password reset", body: self.body(
            italian: """
                Gentile \(name),

                per scegliere una nuova password apra questo collegamento (valido fino al \(expiry), utilizzabile una sola volta):

                \(resetURL)

                Se non ha chiesto di reimpostare la password, ignori questo messaggio e avvisi il suo operatore.
                """,
            english: """
                Dear \(name),

                to choose a new password open this link (valid until \(expiry), usable once):

                \(resetURL)

                If you did not ask for a password reset, ignore this message and tell your operator.
                """))
    }

    /// The revocation notice: which certificate, when, and why.
    public static func revocationNotice(name: String, serialNumber: String, reason: RevocationReason, revokedAt: Date) -> MailContent {
        let time = self.format(revokedAt)
        return MailContent(kind: "revocation-notice", subject: "Certificato di firma revocato / Signing certificate revoked", body: self.body(
            italian: """
                Gentile \(name),

                il certificato di firma con numero di serie \(serialNumber) è stato revocato il \(time) (motivo: \(self.italian(reason))).
                La chiave è stata distrutta e non è più possibile firmare con essa. Per una nuova firma serve un nuovo ordine.
                """,
            english: """
                Dear \(name),

                the signing certificate with serial number \(serialNumber) was revoked on \(time) (reason: \(self.english(reason))).
                Its key has been destroyed and can no longer sign. A new signature needs a new order.
                """))
    }

    /// The notice on the day the certificate ends (no renewal was made).
    public static func expired(name: String, serialNumber: String, expiredAt: Date) -> MailContent {
        let time = self.format(expiredAt)
        return MailContent(kind: "expired", subject: "Certificato di firma scaduto / Signing certificate expired", body: self.body(
            italian: """
                Gentile \(name),

                il certificato di firma con numero di serie \(serialNumber) è scaduto il \(time) e non è stato rinnovato.
                Per firmare di nuovo serve un nuovo ordine.
                """,
            english: """
                Dear \(name),

                the signing certificate with serial number \(serialNumber) expired on \(time) without renewal.
                A new order is needed to sign again.
                """))
    }

    /// The renewal went through: the new certificate, and the old one revoked as superseded.
    public static func renewed(name: String, serialNumber: String, validUntil: Date) -> MailContent {
        let time = self.format(validUntil)
        return MailContent(kind: "renewed", subject: "Certificato di firma rinnovato / Signing certificate renewed", body: self.body(
            italian: """
                Gentile \(name),

                il nuovo certificato di firma (numero di serie \(serialNumber)) è attivo fino al \(time), con la stessa password
                e lo stesso dispositivo OTP. Il certificato precedente è stato revocato perché sostituito.
                """,
            english: """
                Dear \(name),

                your new signing certificate (serial number \(serialNumber)) is active until \(time), with the same password
                and OTP device. The previous certificate was revoked as superseded.
                """))
    }

    /// A security notice after a change the holder should recognise (password, OTP device, mobile number).
    public static func securityNotice(name: String, change: SecurityChange) -> MailContent {
        MailContent(kind: "security-notice", subject: "Sigillo: \(change.italian) / \(change.english)", body: self.body(
            italian: """
                Gentile \(name),

                \(change.italian) sulla sua firma remota. Le sessioni aperte sono state chiuse. Se non è stato lei, sospenda
                subito la firma con il codice utente e avvisi il suo operatore.
                """,
            english: """
                Dear \(name),

                \(change.english) on your remote signature. Open sessions were ended. If this was not you, suspend your
                signature now with your user code and tell your operator.
                """))
    }

    /// The link that confirms a device replacement asked with password and user code: whoever has the mailbox
    /// chooses and proves the new device.
    public static func deviceRebindConfirmation(name: String, confirmURL: String, expiresAt: Date) -> MailContent {
        let expiry = self.format(expiresAt)
        return MailContent(kind: "device-rebind", subject: "Nuovo dispositivo OTP: conferma / New OTP device: confirm", body: self.body(
            italian: """
                Gentile \(name),

                è stata chiesta la sostituzione del dispositivo OTP della sua firma remota. Per scegliere e attivare il nuovo
                dispositivo apra questo collegamento (valido fino al \(expiry), utilizzabile una sola volta):

                \(confirmURL)

                Se non è stato lei, non apra il collegamento: qualcuno conosce la sua password e il suo codice utente.
                Sospenda la firma e avvisi il suo operatore.
                """,
            english: """
                Dear \(name),

                a replacement of your remote signature's OTP device was requested. To choose and activate the new device, open
                this link (valid until \(expiry), single use):

                \(confirmURL)

                If this was not you, do not open the link: someone knows your password and user code. Suspend your signature
                and tell your operator.
                """))
    }

    /// A secret locked after `Lockout.limit` consecutive wrong answers. Anonymous callers get the same answer from a
    /// locked account as from a wrong password (nobody learns which usernames exist), so the holder learns it here.
    public static func lockNotice(name: String, secret: SecretKind) -> MailContent {
        let (italian, english): (String, String) = switch secret {
        case .password: ("la password", "your password")
        case .otp: ("i codici OTP", "your one-time passwords")
        case .userCode: ("il codice utente", "your user code")
        }
        let (unlockIT, unlockEN): (String, String) = secret == .password
            ? ("Per sbloccarla reimposti la password (\"Credenziali smarrite\") o contatti il suo operatore.", "To unlock it, reset your password (\"Lost credentials\") or contact your operator.")
            : ("Per sbloccarli contatti il suo operatore.", "To unlock, contact your operator.")
        return MailContent(kind: "lock-notice", subject: "Sigillo: accesso bloccato / access locked", body: self.body(
            italian: """
                Gentile \(name),

                dopo \(Lockout.limit) tentativi errati consecutivi \(italian) della sua firma remota è stato bloccato. \(unlockIT)
                Se non è stato lei, qualcuno sta provando a usare la sua firma: avvisi il suo operatore.
                """,
            english: """
                Dear \(name),

                after \(Lockout.limit) consecutive wrong attempts, \(english) on your remote signature was locked. \(unlockEN)
                If this was not you, someone is trying to use your signature: tell your operator.
                """))
    }

    /// What changed, for `securityNotice`.
    public enum SecurityChange: Sendable {
        case passwordChanged
        case otpDeviceChanged
        case mobileChanged(endingIn: String)

        var italian: String {
            switch self {
            case .passwordChanged: "password cambiata"
            case .otpDeviceChanged: "nuovo dispositivo OTP associato"
            case .mobileChanged(let end): "numero di cellulare cambiato (ora termina con \(end))"
            }
        }

        var english: String {
            switch self {
            case .passwordChanged: "password changed"
            case .otpDeviceChanged: "new OTP device bound"
            case .mobileChanged(let end): "mobile number changed (now ending in \(end))"
            }
        }
    }

    static func body(italian: String, english: String) -> String {
        italian + "\n\n-- \n\n" + english + "\n"
    }

    /// `23/11/2026 15:13 UTC`: one unambiguous form for both languages.
    static func format(_ date: Date) -> String {
        DateText.utc(date, format: "dd/MM/yyyy HH:mm 'UTC'")
    }

    static func italian(_ reason: RevocationReason) -> String {
        switch reason {
        case .unspecified: "non specificato"
        case .keyCompromise: "compromissione della chiave"
        case .affiliationChanged: "cambio di affiliazione"
        case .superseded: "sostituito"
        case .cessationOfOperation: "cessazione dell'attività"
        case .privilegeWithdrawn: "privilegio revocato"
        }
    }

    static func english(_ reason: RevocationReason) -> String {
        switch reason {
        case .unspecified: "unspecified"
        case .keyCompromise: "key compromise"
        case .affiliationChanged: "affiliation changed"
        case .superseded: "superseded"
        case .cessationOfOperation: "cessation of operation"
        case .privilegeWithdrawn: "privilege withdrawn"
        }
    }
}
