import SigilloDomain
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Where and how to reach the mail relay.
public struct SMTPConfiguration: Sendable, Equatable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, Codable, CaseIterable {
        /// Upgrade with STARTTLS when the relay offers it, plain text when it does not.
        case starttls
        /// STARTTLS is mandatory: a relay that does not offer it gets no mail (transient failure, retried).
        case required
        /// Never encrypt: for a relay on loopback in development only.
        case none
    }

    public struct Credentials: Sendable, Equatable, CustomStringConvertible {
        public let username: String
        public let password: String

        public init(username: String, password: String) {
            self.username = username
            self.password = password
        }

        /// Never the password.
        public var description: String { "\(self.username):<redacted>" }
    }

    public var host: String
    public var port: Int
    /// The name this server gives in EHLO.
    public var heloName: String
    public var tls: TLSMode
    /// PEM file of the CA(s) the relay's certificate must chain to; nil: the system trust store.
    public var caFile: String?
    /// AUTH PLAIN or LOGIN, only ever over TLS.
    public var credentials: Credentials?
    public var connectTimeout: Duration
    /// The longest wait for any one reply (the final reply to DATA included).
    public var replyTimeout: Duration

    public init(host: String, port: Int = 587, heloName: String = "localhost", tls: TLSMode = .required, caFile: String? = nil,
                credentials: Credentials? = nil, connectTimeout: Duration = .seconds(10), replyTimeout: Duration = .seconds(120)) {
        self.host = host
        self.port = port
        self.heloName = heloName
        self.tls = tls
        self.caFile = caFile
        self.credentials = credentials
        self.connectTimeout = connectTimeout
        self.replyTimeout = replyTimeout
    }

    public var description: String {
        "smtp://\(self.host):\(self.port) tls=\(self.tls.rawValue)\(self.credentials.map { " auth=\($0)" } ?? "")"
    }
}

/// An SMTP client (RFC 5321) on SwiftNIO: EHLO, STARTTLS (RFC 3207) with the relay's certificate verified,
/// AUTH PLAIN/LOGIN (RFC 4954) only inside TLS, then MAIL FROM / RCPT TO / DATA per message and QUIT.
public final class SMTPClient: Sendable {
    public let configuration: SMTPConfiguration
    private let tlsContext: NIOSSLContext?
    private let group: any EventLoopGroup

    /// - Throws: `ConfigurationError`-like `SigilloError.invalidRequest` when the CA file cannot be loaded or the
    ///   configuration asks for credentials without TLS.
    public init(configuration: SMTPConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        guard (1...65535).contains(configuration.port) else { throw SigilloError(.invalidRequest, "SMTP port \(configuration.port) is not a port") }
        if configuration.credentials != nil && configuration.tls == .none {
            throw SigilloError(.invalidRequest, "SMTP credentials are only sent over TLS: set tls to starttls or required")
        }
        self.configuration = configuration
        self.group = group
        if configuration.tls == .none {
            self.tlsContext = nil
        } else {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            tls.certificateVerification = .fullVerification
            if let caFile = configuration.caFile {
                guard FileManager.default.isReadableFile(atPath: caFile) else { throw SigilloError(.invalidRequest, "SMTP CA file \(caFile) cannot be read") }
                tls.trustRoots = .file(caFile)
            }
            do {
                self.tlsContext = try NIOSSLContext(configuration: tls)
            } catch {
                throw SigilloError(.invalidRequest, "SMTP TLS settings are not usable: \(error)")
            }
        }
    }

    /// Sends `messages` in one session, one transaction each. The result for each message is in order: a rejection
    /// of one message (RSET, then the next one) does not stop the others; a session failure fails the rest, and so
    /// does `budget` running out (no transaction starts after it).
    public func send(_ messages: [MailMessage], within budget: Duration = .seconds(3600)) async -> [Result<Void, SMTPError>] {
        guard !messages.isEmpty else { return [] }
        let deadline = ContinuousClock.now + budget
        var results: [Result<Void, SMTPError>] = []
        var session: SMTPSession?
        do {
            let opened = try await self.openSession()
            session = opened
            for message in messages {
                guard ContinuousClock.now < deadline else { throw SMTPError(.timeout, "not attempted: the batch ran out of time") }
                do {
                    try await opened.transaction(message)
                    results.append(.success(()))
                } catch let error as SMTPError where error.kind == .mailRejected || error.kind == .invalidMail {
                    results.append(.failure(error))
                    try await opened.expect("RSET", 200..<300, as: .sessionRejected)
                }
            }
            await opened.quit()
        } catch {
            let failure = error as? SMTPError ?? SMTPError(.protocolViolation, "\(error)")
            results += Array(repeating: .failure(failure), count: messages.count - results.count)
            await session?.close()
        }
        return results
    }

    /// Sends one message. - Throws: `SMTPError`.
    public func send(_ message: MailMessage) async throws {
        try await self.send([message])[0].get()
    }

    /// Connects, reads the greeting, says EHLO, upgrades to TLS as configured and authenticates.
    private func openSession() async throws -> SMTPSession {
        let configuration = self.configuration
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: self.group)
                .connectTimeout(TimeAmount(configuration.connectTimeout))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(SMTPReplyHandler()) }
                }
                .connect(host: configuration.host, port: configuration.port).get()
        } catch {
            throw SMTPError(.connectionFailed, "cannot connect to \(configuration.host):\(configuration.port): \(error)")
        }
        let session: SMTPSession
        do {
            let handler = try await channel.eventLoop.submit {
                NIOLoopBound(try channel.pipeline.syncOperations.handler(type: SMTPReplyHandler.self), eventLoop: channel.eventLoop)
            }.get()
            session = SMTPSession(channel: channel, handler: handler, timeout: TimeAmount(configuration.replyTimeout))
        } catch {
            try? await channel.close()
            throw SMTPError(.protocolViolation, "connection set-up failed: \(error)")
        }
        do {
            try session.check(try await session.reply(), 200..<300, as: .sessionRejected)
            var capabilities = try await session.ehlo(configuration.heloName)
            if let tlsContext = self.tlsContext, configuration.tls == .required || capabilities.contains("STARTTLS") {
                guard capabilities.contains("STARTTLS") else { throw SMTPError(.tls, "the relay does not offer STARTTLS and TLS is required") }
                try await session.expect("STARTTLS", 200..<300, as: .tls)
                try await session.startTLS(context: tlsContext, host: configuration.host)
                // RFC 3207: forget everything learnt before TLS and ask again.
                capabilities = try await session.ehlo(configuration.heloName)
            }
            if let credentials = configuration.credentials {
                guard session.isTLS else { throw SMTPError(.tls, "the relay did not offer STARTTLS: credentials are never sent in plain text") }
                try await session.authenticate(credentials, capabilities: capabilities)
            }
            return session
        } catch {
            await session.close()
            throw error
        }
    }
}

/// One connection to the relay, one command at a time.
final class SMTPSession: Sendable {
    let channel: any Channel
    let handler: NIOLoopBound<SMTPReplyHandler>
    let timeout: TimeAmount
    private let tls = Mutex(false)

    init(channel: any Channel, handler: NIOLoopBound<SMTPReplyHandler>, timeout: TimeAmount) {
        self.channel = channel
        self.handler = handler
        self.timeout = timeout
    }

    var isTLS: Bool { self.tls.withLock { $0 } }

    func reply() async throws -> SMTPReply {
        let handler = self.handler
        let timeout = self.timeout
        let eventLoop = self.channel.eventLoop
        return try await eventLoop.flatSubmit { handler.value.nextReply(timeout: timeout, eventLoop: eventLoop) }.get()
    }

    /// Writes one command line (or a whole DATA payload) and waits for the reply.
    func command(_ text: String, terminated: Bool = true) async throws -> SMTPReply {
        self.channel.writeAndFlush(ByteBuffer(string: terminated ? text + "\r\n" : text), promise: nil)
        return try await self.reply()
    }

    /// Throws `kind` unless `reply` is in `accepted`.
    func check(_ reply: SMTPReply, _ accepted: Range<Int>, as kind: SMTPError.Kind, what: String = "the relay") throws {
        guard accepted.contains(reply.code) else { throw SMTPError(kind, "\(what) answered \(reply.code)", reply: reply) }
    }

    /// Sends `command` and throws `kind` unless the reply is in `accepted`. `shown` replaces the command in errors.
    @discardableResult
    func expect(_ command: String, _ accepted: Range<Int>, as kind: SMTPError.Kind, shown: String? = nil) async throws -> SMTPReply {
        let reply = try await self.command(command)
        try self.check(reply, accepted, as: kind, what: shown ?? String(command.prefix(while: { $0 != ":" && $0 != " " })))
        return reply
    }

    /// EHLO; the capability keywords (upper-cased), with AUTH mechanisms as `AUTH PLAIN` etc.
    func ehlo(_ name: String) async throws -> Set<String> {
        // An IP address is given as an address literal (RFC 5321 §4.1.3).
        let literal = switch try? SocketAddress(ipAddress: name, port: 0) {
        case .v4?: "[\(name)]"
        case .v6?: "[IPv6:\(name)]"
        default: name
        }
        let reply = try await self.expect("EHLO \(literal)", 200..<300, as: .sessionRejected)
        var capabilities = Set<String>()
        for line in reply.lines.dropFirst() {
            let words = line.uppercased().split(whereSeparator: { $0 == " " || $0 == "=" }).map(String.init)
            guard let keyword = words.first else { continue }
            capabilities.insert(keyword)
            if keyword == "AUTH" { words.dropFirst().forEach { capabilities.insert("AUTH \($0)") } }
        }
        return capabilities
    }

    /// Puts TLS under the SMTP handler, verifying the relay's certificate against `host` (or its IP address).
    func startTLS(context: NIOSSLContext, host: String) async throws {
        let handler = self.handler
        let channel = self.channel
        let serverName: String? = (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
        try await channel.eventLoop.submit {
            // Anything already received arrived in plain text after the 220: a command injection (CVE-2011-0411 style).
            guard !handler.value.hasUnreadInput else { throw SMTPError(.protocolViolation, "the relay sent data after its STARTTLS reply") }
            do {
                try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: serverName), position: .first)
            } catch {
                throw SMTPError(.tls, "cannot start TLS: \(error)")
            }
        }.get()
        self.tls.withLock { $0 = true }
    }

    /// AUTH PLAIN when offered, else AUTH LOGIN. Neither the password nor its encoding ever appears in an error.
    func authenticate(_ credentials: SMTPConfiguration.Credentials, capabilities: Set<String>) async throws {
        func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        if capabilities.contains("AUTH PLAIN") {
            try await self.expect("AUTH PLAIN " + base64("\0\(credentials.username)\0\(credentials.password)"), 235..<236, as: .sessionRejected, shown: "AUTH PLAIN")
        } else if capabilities.contains("AUTH LOGIN") {
            try await self.expect("AUTH LOGIN", 334..<335, as: .sessionRejected)
            try await self.expect(base64(credentials.username), 334..<335, as: .sessionRejected, shown: "AUTH LOGIN username")
            try await self.expect(base64(credentials.password), 235..<236, as: .sessionRejected, shown: "AUTH LOGIN password")
        } else {
            throw SMTPError(.sessionRejected, "the relay offers neither AUTH PLAIN nor AUTH LOGIN")
        }
    }

    /// MAIL FROM, RCPT TO, DATA and the dot-stuffed message. Rejections are `.mailRejected`.
    func transaction(_ message: MailMessage) async throws {
        try await self.expect("MAIL FROM:<\(message.from.address)>", 200..<300, as: .mailRejected)
        try await self.expect("RCPT TO:<\(message.to.address)>", 200..<300, as: .mailRejected)
        try await self.expect("DATA", 354..<355, as: .mailRejected)
        let reply = try await self.command(MailEncoding.dotStuffed(message.rendered()), terminated: false)
        try self.check(reply, 200..<300, as: .mailRejected, what: "end of DATA")
    }

    /// QUIT and close, ignoring what the relay says: the mails are already accepted.
    func quit() async {
        _ = try? await self.command("QUIT")
        await self.close()
    }

    func close() async {
        try? await self.channel.close()
    }
}
