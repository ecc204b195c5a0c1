import ArgumentParser
import AsyncHTTPClient
import Foundation
import CSCProtocol
import NIOCore
import NIOHTTP1
import NIOSSL

/// `sigillo admin ...`: the operator's client for the mutual-TLS admin listener.
struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Administer holders and credentials over the mutual-TLS admin listener.",
        subcommands: [Holders.self, Clients.self, Invite.self, Rebind.self, Lifecycle.self, HardwareTokens.self, Credentials.self, Unlock.self, Suspend.self, Reinstate.self, Revoke.self, CRL.self, Audit.self, WhoAmI.self, IssueOperator.self, MigrateStore.self, Keys.self, Backup.self]
    )


    struct Invite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue an activation invitation; prints the activation code (shown once) and its expiry.")
        @OptionGroup var connection: AdminConnection
        @Argument var holderID: String

        func run() async throws {
            let data = try await self.connection.send(.POST, "holders/\(try Admin.segment(self.holderID))/invite")
            try self.connection.output(data, as: AdminAPI.Invitation.self) { "activation code: \($0.activationCode)\nexpires: \($0.expiresAt)" }
        }
    }

    struct Rebind: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace a holder's lost or broken OTP device after an identity check; the holder proves the new one (rebind-complete).",
            subcommands: [Begin.self, Complete.self])

        struct Begin: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "begin", abstract: "Start: prints the binding token, and the app secret/URI for totp.")
            @OptionGroup var connection: AdminConnection
            @Argument var holderID: String
            @Option(help: "totp, hotp (with --serial and --seed) or sms.") var device: String = "totp"
            @Option var serial: String?
            @Option(help: "Hardware token seed, hex.") var seed: String?

            func run() async throws {
                let body = AdminAPI.Rebind(device: self.device, serial: self.serial, seed: self.seed)
                let data = try await self.connection.send(.POST, "holders/\(try Admin.segment(self.holderID))/rebind", body: body)
                try self.connection.output(data, as: AdminAPI.RebindStarted.self) { started in
                    var lines = ["binding token: \(started.token)", "device: \(started.device)"]
                    if let uri = started.otpauthURI { lines.append("otpauth URI: \(uri)") }
                    if let sentTo = started.smsSentTo { lines.append("SMS sent to the number ending in \(sentTo.suffix(3))") }
                    lines.append("Then: sigillo admin rebind complete TOKEN --otp CODE (the code the holder reads from the new device)")
                    return lines.joined(separator: "\n")
                }
            }
        }

        struct Complete: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "complete", abstract: "Finish with a code from the new device; the old device stops working.")
            @OptionGroup var connection: AdminConnection
            @Argument var token: String
            @Option var otp: String

            func run() async throws {
                let data = try await self.connection.send(.POST, "rebind/complete", body: AdminAPI.RebindComplete(token: self.token, otp: self.otp))
                try self.connection.output(data, as: [String: String].self) { _ in "new device bound; the old one no longer works" }
            }
        }
    }

    struct HardwareTokens: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-tokens",
            abstract: "Import hardware OTP tokens from the manufacturer's seed file (serial,seed-hex[,digits[,algorithm]] per line); holders then bind them by serial.")
        @OptionGroup var connection: AdminConnection
        @Argument(help: "The seed file (CSV).") var file: String

        func run() async throws {
            guard let text = FileManager.default.contents(atPath: self.file) else { throw ValidationError("cannot read \(self.file)") }
            let data = try await self.connection.send(.POST, "hardware-tokens", raw: text, contentType: "text/csv")
            try self.connection.output(data, as: [String: Int].self) { "added \($0["added"] ?? 0), already known \($0["alreadyKnown"] ?? 0)" }
        }
    }

    struct Lifecycle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the expiry jobs now (the server also runs them hourly): states, reminders, expiry notices.")
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let data = try await self.connection.send(.POST, "lifecycle/run")
            try self.connection.output(data, as: AdminAPI.LifecycleReport.self) { "reminders sent \($0.remindersSent), expiry notices \($0.expiredNotices), state changes \($0.stateChanges)" }
        }
    }

    struct Keys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Holder keys.", subcommands: [Migrate.self])

        struct Migrate: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Move every active credential whose key is a token object to a wrapped key (holderKeys: wrapped).",
                discussion: """
                    Token-object keys were generated non-extractable, so no token can wrap them: each credential is re-keyed \
                    (a new wrapped key pair and certificate for the same holder, who is told by mail), and the old one is \
                    revoked as superseded, which destroys its token objects. Suspended credentials are skipped.
                    """)
            @OptionGroup var connection: AdminConnection

            func run() async throws {
                let data = try await self.connection.send(.POST, "keys/migrate")
                try self.connection.output(data, as: AdminAPI.KeyMigration.self) { report in
                    var lines = report.migrated.map { "migrated \($0.old) -> \($0.new)" }
                    lines += report.skipped.map { "skipped \($0.credentialID): \($0.reason)" }
                    lines.append("\(report.migrated.count) migrated, \(report.skipped.count) skipped")
                    return lines.joined(separator: "\n")
                }
            }
        }
    }

    struct Credentials: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Credentials.", subcommands: [List.self])

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List a holder's credentials.")
            @OptionGroup var connection: AdminConnection
            @Argument var holderID: String

            func run() async throws {
                let data = try await self.connection.send(.GET, "holders/\(try Admin.segment(self.holderID))/credentials")
                try self.connection.output(data, as: AdminAPI.CredentialList.self) { list in
                    list.credentials.isEmpty ? "no credentials" : list.credentials.map(Admin.describe).joined(separator: "\n\n")
                }
            }
        }
    }

    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reset a credential's password and OTP failure counters.")
        @OptionGroup var connection: AdminConnection
        @Argument var credentialID: String

        func run() async throws {
            try await Admin.credentialAction(self.connection, self.credentialID, "unlock")
        }
    }

    struct Suspend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Suspend a credential (certificateHold): no authorization or signature until reinstated.")
        @OptionGroup var connection: AdminConnection
        @Argument var credentialID: String

        func run() async throws {
            try await Admin.credentialAction(self.connection, self.credentialID, "suspend")
        }
    }

    struct Reinstate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reinstate a suspended credential (a revoked one stays revoked).")
        @OptionGroup var connection: AdminConnection
        @Argument var credentialID: String

        func run() async throws {
            try await Admin.credentialAction(self.connection, self.credentialID, "reinstate")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a credential for good: its key is destroyed in the token.")
        @OptionGroup var connection: AdminConnection
        @Argument var credentialID: String
        @Option(help: "unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation or privilegeWithdrawn.")
        var reason: String

        func run() async throws {
            try await Admin.credentialAction(self.connection, self.credentialID, "revoke", body: AdminAPI.Revoke(reason: self.reason))
        }
    }

    struct CRL: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "crl", abstract: "Write the current CRL (DER); it is rebuilt first if anything changed.")
        @OptionGroup var connection: AdminConnection
        @Option(name: .shortAndLong, help: "Where to write the CRL (DER); standard output if omitted.")
        var output: String?

        func run() async throws {
            let data = try await self.connection.send(.GET, "crl")
            if let output = self.output {
                try data.write(to: URL(fileURLWithPath: output), options: .atomic)
                if self.connection.json {
                    let summary: [String: any Sendable] = ["bytes": data.count, "output": output]
                    print(String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
                } else {
                    print("CRL written to \(output) (\(data.count) bytes)")
                }
            } else {
                FileHandle.standardOutput.write(data)
            }
        }
    }

    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The audit log.", subcommands: [Verify.self, Export.self, Checkpoint.self, ResetAnchor.self])

        struct Verify: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Check the audit hash chain, every checkpoint's signature and the token's anchor (exit status 1 if anything is wrong).")
            @OptionGroup var connection: AdminConnection

            func run() async throws {
                let data = try await self.connection.send(.GET, "audit/verify")
                let result = try JSONDecoder().decode(AuditVerificationView.self, from: data)
                try self.connection.output(data, as: AuditVerificationView.self) { result in
                    guard result.intact else { return "AUDIT LOG BROKEN: \(result.problem ?? "unknown problem")" }
                    let anchored = result.anchoredThrough.map { "anchored through record \($0) by \(result.checkpoints ?? 0) signed checkpoint(s)" } ?? "no checkpoint yet"
                    return "audit log intact: \(result.records) records, \(anchored); \(result.unanchored ?? result.records) after the last checkpoint (not anchored yet)"
                }
                if !result.intact { throw ExitCode(1) }
            }
        }

        struct Checkpoint: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Sign the audit log's head with the token's audit key now (e.g. before a backup).")
            @OptionGroup var connection: AdminConnection

            func run() async throws {
                let data = try await self.connection.send(.POST, "audit/checkpoint")
                try self.connection.output(data, as: AdminAPI.AuditLine.self) { line in
                    let signed = line.details.split(separator: " ").first { $0.hasPrefix("seq=") }?.dropFirst(4) ?? "?"
                    return "checkpoint: record \(line.seq) signs the log through record \(signed)"
                }
            }
        }

        struct ResetAnchor: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "reset-anchor",
                abstract: "After restoring a backup that lost the checkpoint the token keeps: point the token's anchor at a new checkpoint (recorded in the log).")
            @OptionGroup var connection: AdminConnection

            func run() async throws {
                let data = try await self.connection.send(.POST, "audit/anchor/reset")
                try self.connection.output(data, as: AdminAPI.AuditAnchorReset.self) { reset in
                    "audit anchor: record \(reset.previous.map { String($0.seq) } ?? "none") → record \(reset.anchor.map { String($0.seq) } ?? "none")"
                }
            }
        }

        struct Export: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Print every audit record as JSON lines.")
            @OptionGroup var connection: AdminConnection

            func run() async throws {
                let data = try await self.connection.send(.GET, "audit/export")
                FileHandle.standardOutput.write(data)
            }
        }
    }

    struct WhoAmI: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "whoami", abstract: "Show the operator identity the admin listener sees.")
        @OptionGroup var connection: AdminConnection

        func run() async throws {
            let data = try await self.connection.send(.GET, "whoami")
            try self.connection.output(data, as: AdminAPI.WhoAmI.self) { $0.operator }
        }
    }

    struct IssueOperator: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue an operator client certificate from the admin CA (writes NAME.pem and NAME-key.pem).")
        @Argument(help: "The operator's name (the certificate's CN), letters, digits, '.', '_' or '-'.") var name: String
        @Option(help: "Admin CA certificate.") var adminCA: String = "certs/admin-ca.pem"
        @Option(help: "Admin CA private key.") var adminCAKey: String = "certs/admin-ca-key.pem"
        @Option(help: "Folder for the new certificate and key.") var output: String = "certs"
        @Option(help: "Validity in days.") var days: Int = 825

        func validate() throws {
            guard !self.name.isEmpty, self.name.count <= 64, self.name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
                throw ValidationError("an operator name has 1 to 64 letters, digits, '.', '_' or '-'")
            }
        }

        func run() async throws {
            let directory = URL(fileURLWithPath: self.output)
            let certificate = directory.appendingPathComponent("\(self.name).pem").path
            let key = directory.appendingPathComponent("\(self.name)-key.pem").path
            guard !FileManager.default.fileExists(atPath: certificate), !FileManager.default.fileExists(atPath: key) else {
                throw ValidationError("\(certificate) or \(key) already exists")
            }
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let csr = directory.appendingPathComponent("\(self.name).csr").path
            let ext = directory.appendingPathComponent("\(self.name).ext").path
            defer {
                try? FileManager.default.removeItem(atPath: csr)
                try? FileManager.default.removeItem(atPath: ext)
            }
            try Data("extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n".utf8).write(to: URL(fileURLWithPath: ext))
            try Self.openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/C=IT/O=Sigillo Operators/CN=\(self.name)",
                              "-keyout", key, "-out", csr])
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
            try Self.openssl(["x509", "-req", "-in", csr, "-CA", self.adminCA, "-CAkey", self.adminCAKey, "-CAcreateserial", "-days", String(self.days),
                              "-extfile", ext, "-out", certificate])
            print("operator certificate \(certificate) (key \(key)) issued by \(self.adminCA) for CN=\(self.name)")
        }

        static func openssl(_ arguments: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["openssl"] + arguments
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let message = errors.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw ValidationError("openssl \(arguments.first ?? "") failed: \(String(decoding: message, as: UTF8.self))")
            }
        }
    }

    /// `audit/verify`'s answer.
    struct AuditVerificationView: Codable {
        var intact: Bool
        var records: Int
        var highestSequence: Int64
        var firstBrokenSequence: Int64?
        var problem: String?
        var checkpoints: Int?
        var anchoredThrough: Int64?
        var unanchored: Int?
    }

    static func credentialAction(_ connection: AdminConnection, _ credentialID: String, _ action: String, body: (any Encodable)? = nil) async throws {
        let data = try await connection.send(.POST, "credentials/\(try self.segment(credentialID))/\(action)", body: body)
        try connection.output(data, as: AdminAPI.CredentialView.self) { self.describe($0) }
    }

    /// A path segment, refusing anything that would change the route.
    static func segment(_ id: String) throws -> String {
        guard !id.isEmpty, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw ValidationError("'\(id)' is not a valid identifier")
        }
        return id
    }

    static func describe(_ holder: AdminAPI.HolderView) -> String {
        """
        holder      \(holder.id)
        name        \(holder.givenName) \(holder.surname)
        fiscal code \(holder.fiscalCode)
        email       \(holder.email)
        mobile      \(holder.mobile)
        state       \(holder.state)
        username    \(holder.username ?? "-")
        created     \(holder.createdAt)
        """
    }

    static func describe(_ credential: AdminAPI.CredentialView) -> String {
        var lines = [
            "credential  \(credential.id)",
            "holder      \(credential.holderID)",
            "status      \(credential.status)",
            "key         \(credential.keyAlgorithm)",
            "serial      \(credential.serialNumber)",
            "subject     \(credential.subject ?? "-")",
            "valid       \(credential.notBefore) to \(credential.notAfter)",
            "failures    password \(credential.passwordFailures), otp \(credential.otpFailures)\(credential.locked ? " (locked)" : "")",
        ]
        if let reason = credential.revocationReason { lines.append("revoked     \(credential.revokedAt ?? "?") (\(reason))") }
        return lines.joined(separator: "\n")
    }
}

