import Crypto
import Foundation
import PKCS11
import SigilloDomain
import SigilloPKI
import SigilloSQLite
import SigilloTestSupport
import Testing
import X509

func errorCode(_ body: () async throws -> Void) async -> SigilloError.Code? {
    do {
        try await body()
        return nil
    } catch let error as SigilloError {
        return error.code
    } catch {
        Issue.record("unexpected error type: \(error)")
        return nil
    }
}

func digest(_ text: String) -> [UInt8] { Array(SHA256.hash(data: Data(text.utf8))) }

@Suite("Holders and activation")
struct ActivationTests {
    @Test("email, mobile and fiscal code belong to one holder only; bad fields are refused")
    func uniqueness() async throws {
        let fixture = try await ServiceFixture()
        let first = try await fixture.newHolder()
        let service = fixture.service
        #expect(await errorCode {
            _ = try await service.enrollment.createHolder(givenName: "Luigi", surname: "Verdi", fiscalCode: TestData.fiscalCode(), email: first.email.uppercased(), mobile: "+393330000001", actor: "op")
        } == .conflict)
        #expect(await errorCode {
            _ = try await service.enrollment.createHolder(givenName: "Luigi", surname: "Verdi", fiscalCode: TestData.fiscalCode(), email: "luigi@example.it", mobile: first.mobile, actor: "op")
        } == .conflict)
        #expect(await errorCode {
            _ = try await service.enrollment.createHolder(givenName: "Luigi", surname: "Verdi", fiscalCode: first.fiscalCode, email: "luigi2@example.it", mobile: "+393330000002", actor: "op")
        } == .conflict)
        #expect(await errorCode {
            _ = try await service.enrollment.createHolder(givenName: "Luigi", surname: "Verdi", fiscalCode: "RSSMRA85T10A562X", email: "luigi3@example.it", mobile: "+393330000003", actor: "op")
        } == .invalidRequest)
        #expect(await errorCode {
            _ = try await service.enrollment.createHolder(givenName: "Luigi", surname: "Verdi", fiscalCode: TestData.fiscalCode(), email: "not-an-email", mobile: "+393330000004", actor: "op")
        } == .invalidRequest)
        #expect(await errorCode {
            _ = try await service.enrollment.createHolder(givenName: "Luigi", surname: "Verdi", fiscalCode: TestData.fiscalCode(), email: "l5@example.it", mobile: "3330000005", actor: "op")
        } == .invalidRequest)
        // The refused ones left nothing behind: a fresh holder with new data still works.
        _ = try await fixture.newHolder(name: "Luigi")
    }

    @Test("activation issues a certificate openssl accepts, for ECDSA and RSA keys, wrapped or token objects",
          arguments: [KeyAlgorithm.ecP256, .rsa2048], HolderKeyStorage.allCases)
    func activation(algorithm: KeyAlgorithm, holderKeys: HolderKeyStorage) async throws {
        let fixture = try await ServiceFixture(holderKeys: holderKeys)
        let active = try await fixture.activeHolder(keyAlgorithm: algorithm)
        #expect(active.holder.state == .active)
        #expect(active.holder.username == active.username)
        #expect(active.holder.passwordHash?.hasPrefix("$argon2id$") == true)
        #expect(try await HolderKeyProbe.algorithm(active.credential, token: fixture.token.token) == algorithm)
        // Wrapped: the row has the key and the token none; token objects: the other way round.
        #expect((active.credential.wrappedKey != nil) == (holderKeys == .wrapped))
        #expect(try await fixture.token.token.containsKey(id: active.credential.tokenKeyID) == (holderKeys == .token))
        #expect(try await HolderKeyProbe.exists(active.credential.id, store: fixture.store, token: fixture.token.token))
        let certificate = try Certificate(derEncoded: active.credential.certificateDER)
        #expect(certificate.subject.description.contains("TINIT-\(active.holder.fiscalCode)"))
        let directory = fixture.token.directory
        try fixture.ca.certificatePEM.write(to: directory.appendingPathComponent("ca.pem"), atomically: true, encoding: .utf8)
        try CertificateAuthority.pem(of: certificate).write(to: directory.appendingPathComponent("holder.pem"), atomically: true, encoding: .utf8)
        let verify = try run("openssl", ["verify", "-CAfile", directory.appendingPathComponent("ca.pem").path, directory.appendingPathComponent("holder.pem").path])
        #expect(verify.status == 0, "\(verify.output)")
        // The certificate's public key is the token's key.
        #expect(try Certificate.PublicKey(derEncoded: await HolderKeyProbe.publicKey(active.credential, token: fixture.token.token)) == certificate.publicKey)
    }

    @Test("an invitation is used once, and not after 12 months")
    func invitationRules() async throws {
        let fixture = try await ServiceFixture()
        let holder = try await fixture.newHolder()
        let invitation = try await fixture.service.enrollment.invite(holderID: holder.id, actor: "op")
        #expect(invitation.expiresAt.timeIntervalSince(fixture.clock.now) == 365 * 86_400)
        let challenge = try await fixture.service.enrollment.beginActivation(invitationCode: invitation.code, device: .totp())
        // A wrong OTP does not consume the invitation and leaves no key in the token.
        #expect(await errorCode {
            _ = try await fixture.service.enrollment.completeActivation(invitationCode: invitation.code, username: "mario", password: "correct horse battery", otp: "000000")
        } == .invalidOTP)
        // A weak password is refused before anything happens.
        #expect(await errorCode {
            _ = try await fixture.service.enrollment.completeActivation(invitationCode: invitation.code, username: "mario", password: "short", otp: TOTP.code(secret: challenge.secret!, time: fixture.clock.now))
        } == .weakPassword)
        _ = try await fixture.service.enrollment.completeActivation(invitationCode: invitation.code, username: "mario", password: "correct horse battery", otp: TOTP.code(secret: challenge.secret!, time: fixture.clock.now))
        fixture.clock.advance(30)
        #expect(await errorCode { _ = try await fixture.service.enrollment.beginActivation(invitationCode: invitation.code, device: .totp()) } == .invitationUsed)
        #expect(await errorCode {
            _ = try await fixture.service.enrollment.completeActivation(invitationCode: invitation.code, username: "mario2", password: "correct horse battery", otp: TOTP.code(secret: challenge.secret!, time: fixture.clock.now))
        } == .invitationUsed)
        #expect(await errorCode { _ = try await fixture.service.enrollment.beginActivation(invitationCode: "NOSUCHCODE", device: .totp()) } == .notFound)

        let late = try await fixture.newHolder(name: "Anna")
        let lateInvitation = try await fixture.service.enrollment.invite(holderID: late.id, actor: "op")
        fixture.clock.advance(365 * 86_400 - 60)
        _ = try await fixture.service.enrollment.beginActivation(invitationCode: lateInvitation.code, device: .totp())
        fixture.clock.advance(120)
        #expect(await errorCode { _ = try await fixture.service.enrollment.beginActivation(invitationCode: lateInvitation.code, device: .totp()) } == .invitationExpired)
        #expect(await errorCode {
            _ = try await fixture.service.enrollment.completeActivation(invitationCode: lateInvitation.code, username: "anna", password: "correct horse battery", otp: "123456")
        } == .invitationExpired)
    }

    @Test("hardware HOTP token and SMS devices activate and authorize")
    func otherDevices() async throws {
        let fixture = try await ServiceFixture()
        // HOTP: the token's seed is imported; codes come in sequence.
        let seed = Array("12345678901234567890".utf8)
        let hotpHolder = try await fixture.newHolder(name: "Carla")
        let hotpInvite = try await fixture.service.enrollment.invite(holderID: hotpHolder.id, actor: "op")
        _ = try await fixture.service.enrollment.beginActivation(invitationCode: hotpInvite.code, device: .hotp(serial: "GALT-0001", secret: seed))
        let hotpCredential = try await fixture.service.enrollment.completeActivation(invitationCode: hotpInvite.code, username: "carla", password: "correct horse battery", otp: "755224")
        let hashes = [digest("hotp document")]
        let auth = try await fixture.service.authorization.authorize(holderID: hotpHolder.id, credentialID: hotpCredential.id, numSignatures: 1, hashes: hashes, hashAlgorithm: .sha256, password: "correct horse battery", otp: "287082")
        #expect(await errorCode {
            _ = try await fixture.service.authorization.authorize(holderID: hotpHolder.id, credentialID: hotpCredential.id, numSignatures: 1, hashes: hashes, hashAlgorithm: .sha256, password: "correct horse battery", otp: "287082")
        } == .invalidOTP)
        _ = try await fixture.service.signing.signHash(holderID: hotpHolder.id, credentialID: hotpCredential.id, sad: auth.sad, hashes: hashes, mechanism: .ecdsa(.sha256))

        // SMS: the code goes to the registered mobile number and works once.
        let smsHolder = try await fixture.newHolder(name: "Dario")
        let smsInvite = try await fixture.service.enrollment.invite(holderID: smsHolder.id, actor: "op")
        let challenge = try await fixture.service.enrollment.beginActivation(invitationCode: smsInvite.code, device: .sms)
        #expect(challenge.smsSentTo == String(smsHolder.mobile.suffix(3)))
        #expect(fixture.notifier.last?.recipient == smsHolder.mobile)
        let smsCredential = try await fixture.service.enrollment.completeActivation(invitationCode: smsInvite.code, username: "dario", password: "correct horse battery", otp: fixture.notifier.lastCode!)
        try await fixture.service.authorization.sendOTP(holderID: smsHolder.id, credentialID: smsCredential.id)
        let code = fixture.notifier.lastCode!
        _ = try await fixture.service.authorization.authorize(holderID: smsHolder.id, credentialID: smsCredential.id, numSignatures: 1, hashes: hashes, hashAlgorithm: .sha256, password: "correct horse battery", otp: code)
        #expect(await errorCode {
            _ = try await fixture.service.authorization.authorize(holderID: smsHolder.id, credentialID: smsCredential.id, numSignatures: 1, hashes: hashes, hashAlgorithm: .sha256, password: "correct horse battery", otp: code)
        } == .invalidOTP)
        // An SMS code expires after 5 minutes.
        try await fixture.service.authorization.sendOTP(holderID: smsHolder.id, credentialID: smsCredential.id)
        fixture.clock.advance(301)
        #expect(await errorCode {
            _ = try await fixture.service.authorization.authorize(holderID: smsHolder.id, credentialID: smsCredential.id, numSignatures: 1, hashes: hashes, hashAlgorithm: .sha256, password: "correct horse battery", otp: fixture.notifier.lastCode!)
        } == .invalidOTP)
        // The development notifier put what was sent in the outbox file (the database keeps no message).
        #expect(fixture.notifier.texts.map(\.recipient) == Array(repeating: smsHolder.mobile, count: 3))
        let outbox = try String(contentsOfFile: fixture.outboxFile, encoding: .utf8)
        #expect(outbox.split(separator: "\n").filter { $0.contains("\"channel\":\"sms\"") }.count == 3)

        // At most five codes in 15 minutes (the activation's counts): the sixth is refused, nothing is sent.
        try await fixture.service.authorization.sendOTP(holderID: smsHolder.id, credentialID: smsCredential.id)
        try await fixture.service.authorization.sendOTP(holderID: smsHolder.id, credentialID: smsCredential.id)
        #expect(await errorCode { try await fixture.service.authorization.sendOTP(holderID: smsHolder.id, credentialID: smsCredential.id) } == .tooManyRequests)
        #expect(fixture.notifier.texts.count == 5)
        #expect(try await fixture.store.auditRecords().contains { $0.event.action == "otp.sms.send" && $0.event.outcome == "throttled" })
        // 15 minutes after the first ones, codes can be sent again.
        fixture.clock.advance(900)
        try await fixture.service.authorization.sendOTP(holderID: smsHolder.id, credentialID: smsCredential.id)
        #expect(fixture.notifier.texts.count == 6)
    }
}

@Suite("Authorization and SAD")
struct AuthorizationTests {
    @Test("password + OTP for exact hashes yields a SAD; signatures verify against the certificate", arguments: HolderKeyStorage.allCases)
    func happyPath(holderKeys: HolderKeyStorage) async throws {
        let fixture = try await ServiceFixture(holderKeys: holderKeys)
        let active = try await fixture.activeHolder()
        let hashes = [digest("contract.pdf"), digest("annex.pdf")]
        let auth = try await fixture.service.authorization.authorize(
            holderID: active.holder.id, credentialID: active.credential.id, numSignatures: 2, hashes: hashes, hashAlgorithm: .sha256, password: active.password, otp: fixture.otp(active))
        #expect(auth.expiresIn == 300)
        #expect(auth.sad.count >= 43)
        let signatures = try await fixture.service.signing.signHash(holderID: active.holder.id, credentialID: active.credential.id, sad: auth.sad, hashes: hashes, mechanism: .ecdsa(.sha256))
        let key = try #require(P256.Signing.PublicKey(try Certificate(derEncoded: active.credential.certificateDER).publicKey))
        for (text, signature) in zip(["contract.pdf", "annex.pdf"], signatures) {
            #expect(key.isValidSignature(try P256.Signing.ECDSASignature(derRepresentation: signature), for: SHA256.hash(data: Data(text.utf8))))
        }
        // The store keeps no usable SAD: only its digest.
        let raw = try databaseBytes(fixture.databasePath)
        #expect(raw.range(of: Data(auth.sad.utf8)) == nil)
        #expect(raw.range(of: Data(active.password.utf8)) == nil)
    }

    @Test("wrong password, wrong OTP and a replayed OTP are refused")
    func wrongFactors() async throws {
        let fixture = try await ServiceFixture()
        let active = try await fixture.activeHolder()
        let hashes = [digest("x")]
        let service = fixture.service
        func authorize(password: String, otp: String) async throws {
            _ = try await service.authorization.authorize(holderID: active.holder.id, credentialID: active.credential.id, numSignatures: 1, hashes: hashes, hashAlgorithm: .sha256, password: password, otp: otp)
        }
        #expect(await errorCode { try await authorize(password: "wrong password!", otp: TOTP.code(secret: active.secret, time: fixture.clock.now)) } == .invalidPassword)
        let wrongOTP = TOTP.code(secret: active.secret, time: fixture.clock.now) == "000000" ? "111111" : "000000"
        #expect(await errorCode { try await authorize(password: active.password, otp: wrongOTP) } == .invalidOTP)
        let code = TOTP.code(secret: active.secret, time: fixture.clock.now)
        try await authorize(password: active.password, otp: code)
        #expect(await errorCode { try await authorize(password: active.password, otp: code) } == .otpReplayed)
        // An older code still inside the ±1 step window is a replay too.
        fixture.clock.advance(30)
        #expect(await errorCode { try await authorize(password: active.password, otp: code) } == .otpReplayed)
        #expect(await errorCode { try await authorize(password: active.password, otp: "12ab56") } == .invalidOTP)
    }

    @Test("the SAD expires, covers only its hashes and only numSignatures signatures")
    func sadRules() async throws {
        let fixture = try await ServiceFixture()
        let active = try await fixture.activeHolder()
        let service = fixture.service
        let (holderID, credentialID) = (active.holder.id, active.credential.id)
        let hashes = [digest("a"), digest("b")]
        let auth = try await service.authorization.authorize(holderID: holderID, credentialID: credentialID, numSignatures: 2, hashes: hashes, hashAlgorithm: .sha256, password: active.password, otp: fixture.otp(active))
        // A hash it was not issued for.
        #expect(await errorCode { _ = try await service.signing.signHash(holderID: holderID, credentialID: credentialID, sad: auth.sad, hashes: [digest("c")], mechanism: .ecdsa(.sha256)) } == .invalidSAD)
        #expect(await errorCode { _ = try await service.signing.signHash(holderID: holderID, credentialID: credentialID, sad: auth.sad, hashes: [hashes[0], digest("c")], mechanism: .ecdsa(.sha256)) } == .invalidSAD)
        // Another hash algorithm.
        #expect(await errorCode { _ = try await service.signing.signHash(holderID: holderID, credentialID: credentialID, sad: auth.sad, hashes: [Array(SHA384.hash(data: Data("a".utf8)))], mechanism: .ecdsa(.sha384)) } == .invalidRequest)
        // numSignatures: two signatures, then no more.
        _ = try await service.signing.signHash(holderID: holderID, credentialID: credentialID, sad: auth.sad, hashes: [hashes[0]], mechanism: .ecdsa(.sha256))
        _ = try await service.signing.signHash(holderID: holderID, credentialID: credentialID, sad: auth.sad, hashes: [hashes[1]], mechanism: .ecdsa(.sha256))
        #expect(await errorCode { _ = try await service.signing.signHash(holderID: holderID, credentialID: credentialID, sad: auth.sad, hashes: [hashes[1]], mechanism: .ecdsa(.sha256)) } == .invalidSAD)
        // Expiry after 5 minutes.
        let second = try await service.authorization.authorize(holderID: holderID, credentialID: credentialID, numSignatures: 1, hashes: [hashes[0]], hashAlgorithm: .sha256, password: active.password, otp: fixture.otp(active))
        fixture.clock.advance(301)
        #expect(await errorCode { _ = try await service.signing.signHash(holderID: holderID, credentialID: credentialID, sad: second.sad, hashes: [hashes[0]], mechanism: .ecdsa(.sha256)) } == .expiredSAD)
        // An unknown SAD.
        #expect(await errorCode { _ = try await service.signing.signHash(holderID: holderID, credentialID: credentialID, sad: "forged", hashes: [hashes[0]], mechanism: .ecdsa(.sha256)) } == .invalidSAD)
        // numSignatures above multisign.
        #expect(await errorCode {
            _ = try await service.authorization.authorize(holderID: holderID, credentialID: credentialID, numSignatures: 101, hashes: hashes, hashAlgorithm: .sha256, password: active.password, otp: fixture.otp(active))
        } == .tooManySignatures)
    }

    @Test("holder A's SAD does not work on holder B's credential, nor A's password")
    func crossHolder() async throws {
        let fixture = try await ServiceFixture()
        let alice = try await fixture.activeHolder(name: "Alice")
        let bob = try await fixture.activeHolder(name: "Bob")
        let hashes = [digest("shared")]
        let auth = try await fixture.service.authorization.authorize(holderID: alice.holder.id, credentialID: alice.credential.id, numSignatures: 1, hashes: hashes, hashAlgorithm: .sha256, password: alice.password, otp: fixture.otp(alice))
        #expect(await errorCode { _ = try await fixture.service.signing.signHash(holderID: alice.holder.id, credentialID: bob.credential.id, sad: auth.sad, hashes: hashes, mechanism: .ecdsa(.sha256)) } == .invalidSAD)
        #expect(await errorCode { _ = try await fixture.service.signing.signHash(holderID: bob.holder.id, credentialID: bob.credential.id, sad: auth.sad, hashes: hashes, mechanism: .ecdsa(.sha256)) } == .invalidSAD)
        // Alice cannot authorize Bob's credential even with valid factors of her own.
        #expect(await errorCode {
            _ = try await fixture.service.authorization.authorize(holderID: alice.holder.id, credentialID: bob.credential.id, numSignatures: 1, hashes: hashes, hashAlgorithm: .sha256, password: alice.password, otp: fixture.otp(alice))
        } == .notFound)
        // The SAD still works where it belongs.
        _ = try await fixture.service.signing.signHash(holderID: alice.holder.id, credentialID: alice.credential.id, sad: auth.sad, hashes: hashes, mechanism: .ecdsa(.sha256))
    }

    @Test("many tasks racing on one SAD spend exactly numSignatures", arguments: HolderKeyStorage.allCases)
    func concurrentDoubleSpend(holderKeys: HolderKeyStorage) async throws {
        let fixture = try await ServiceFixture(holderKeys: holderKeys)
        let active = try await fixture.activeHolder()
        let hash = digest("raced")
        let auth = try await fixture.service.authorization.authorize(holderID: active.holder.id, credentialID: active.credential.id, numSignatures: 3, hashes: [hash], hashAlgorithm: .sha256, password: active.password, otp: fixture.otp(active))
        let service = fixture.service
        let (holderID, credentialID) = (active.holder.id, active.credential.id)
        let successes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    do {
                        _ = try await service.signing.signHash(holderID: holderID, credentialID: credentialID, sad: auth.sad, hashes: [hash], mechanism: .ecdsa(.sha256))
                        return true
                    } catch let error as SigilloError where error.code == .invalidSAD {
                        return false
                    }
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(successes == 3)
    }

    @Test("5 wrong passwords lock the PIN, 5 wrong OTPs lock the OTP; a success in between resets the count")
    func lockout() async throws {
        let fixture = try await ServiceFixture()
        let active = try await fixture.activeHolder()
        let other = try await fixture.activeHolder(name: "Otto")
        let hashes = [digest("x")]
        let service = fixture.service
        func authorize(_ holder: ServiceFixture.ActiveHolder, password: String, otp: String) async throws {
            _ = try await service.authorization.authorize(holderID: holder.holder.id, credentialID: holder.credential.id, numSignatures: 1, hashes: hashes, hashAlgorithm: .sha256, password: password, otp: otp)
        }
        for _ in 0..<4 { #expect(await errorCode { try await authorize(active, password: "Tr0ub4dor&3-wrong", otp: fixture.otp(active)) } == .invalidPassword) }
        try await authorize(active, password: active.password, otp: fixture.otp(active))
        for _ in 0..<4 { #expect(await errorCode { try await authorize(active, password: "Tr0ub4dor&3-wrong", otp: fixture.otp(active)) } == .invalidPassword) }
        #expect(await errorCode { try await authorize(active, password: "Tr0ub4dor&3-wrong", otp: fixture.otp(active)) } == .pinLocked)
        #expect(await errorCode { try await authorize(active, password: active.password, otp: fixture.otp(active)) } == .pinLocked)
        // Anonymous callers cannot tell a locked account from a wrong password or an unknown user.
        #expect(await errorCode { _ = try await service.authentication.login(username: active.username, password: active.password) } == .invalidPassword)
        #expect(fixture.notifier.mails.last?.subject?.contains("bloccato") == true)

        for _ in 0..<4 { #expect(await errorCode { try await authorize(other, password: other.password, otp: "000001") } == .invalidOTP) }
        #expect(await errorCode { try await authorize(other, password: other.password, otp: "000001") } == .otpLocked)
        #expect(await errorCode { try await authorize(other, password: other.password, otp: fixture.otp(other)) } == .otpLocked)
        // The operator's unlock (admin plane) clears the counters.
        _ = try await service.lifecycle.unlock(credentialID: other.credential.id, actor: "CN=operator")
        try await authorize(other, password: other.password, otp: fixture.otp(other))
        // Every failure was audited, and no audit record holds a secret.
        let records = try await fixture.store.auditRecords()
        #expect(records.filter { $0.event.outcome == "locked" }.count == 2)
        #expect(records.filter { $0.event.outcome == "refused" && $0.event.action == "credential.authorize" }.count >= 12)
        #expect(!records.contains { "\($0.event)".contains(active.password) || "\($0.event)".contains("Tr0ub4dor") })
        #expect(AuditChain.firstBrokenRecord(records) == nil)
    }

    @Test("suspended credentials and expired certificates do not sign", arguments: HolderKeyStorage.allCases)
    func credentialValidity(holderKeys: HolderKeyStorage) async throws {
        let fixture = try await ServiceFixture(holderKeys: holderKeys)
        let active = try await fixture.activeHolder()
        let hashes = [digest("x")]
        let service = fixture.service
        let auth = try await service.authorization.authorize(holderID: active.holder.id, credentialID: active.credential.id, numSignatures: 1, hashes: hashes, hashAlgorithm: .sha256, password: active.password, otp: fixture.otp(active))
        try await fixture.store.setCredentialStatus(id: active.credential.id, status: .suspended)
        #expect(await errorCode { _ = try await service.signing.signHash(holderID: active.holder.id, credentialID: active.credential.id, sad: auth.sad, hashes: hashes, mechanism: .ecdsa(.sha256)) } == .credentialDisabled)
        #expect(await errorCode {
            _ = try await service.authorization.authorize(holderID: active.holder.id, credentialID: active.credential.id, numSignatures: 1, hashes: hashes, hashAlgorithm: .sha256, password: active.password, otp: fixture.otp(active))
        } == .credentialDisabled)
        try await fixture.store.setCredentialStatus(id: active.credential.id, status: .active)
        fixture.clock.advance(3 * 366 * 86_400)
        #expect(await errorCode {
            _ = try await service.authorization.authorize(holderID: active.holder.id, credentialID: active.credential.id, numSignatures: 1, hashes: hashes, hashAlgorithm: .sha256, password: active.password, otp: fixture.otp(active))
        } == .certificateInvalid)
    }

    @Test("login checks the password and refuses unknown users alike")
    func login() async throws {
        let fixture = try await ServiceFixture()
        let active = try await fixture.activeHolder()
        #expect(try await fixture.service.authentication.login(username: active.username.uppercased(), password: active.password).id == active.holder.id)
        #expect(await errorCode { _ = try await fixture.service.authentication.login(username: active.username, password: "nope nope nope") } == .invalidPassword)
        #expect(await errorCode { _ = try await fixture.service.authentication.login(username: "nobody", password: "nope nope nope") } == .invalidPassword)
    }
}
