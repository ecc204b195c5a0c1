import SigilloDomain
import NIOCore
import NIOSSL

/// Parses the relay's bytes into `SMTPReply`s (multi-line replies joined) and hands them, in order, to whoever
/// waits with `nextReply`. Runs on the channel's event loop only.
///
/// Any failure (malformed reply, timeout, TLS error, the relay closing the connection) is sticky: it fails the
/// waiting reply and every later one, and closes the channel.
final class SMTPReplyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// Bounds on what a relay may send, so a broken or hostile one cannot make us buffer without limit.
    static let maximumLineLength = 4096
    static let maximumLinesPerReply = 256

    private var buffer = ByteBuffer()
    private var code: Int?
    private var lines: [String] = []
    private var replies = CircularBuffer<SMTPReply>()
    private var waiter: (promise: EventLoopPromise<SMTPReply>, timeout: Scheduled<Void>)?
    private var failure: SMTPError?
    private var context: ChannelHandlerContext?

    /// True while bytes or replies nobody asked for are waiting (checked before the TLS upgrade: anything
    /// buffered then was sent in plain text and must not be trusted as part of the TLS session).
    var hasUnreadInput: Bool { self.buffer.readableBytes > 0 || !self.replies.isEmpty || !self.lines.isEmpty }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// The next reply, failing with `.timeout` if none is complete within `timeout`.
    func nextReply(timeout: TimeAmount, eventLoop: any EventLoop) -> EventLoopFuture<SMTPReply> {
        if !self.replies.isEmpty { return eventLoop.makeSucceededFuture(self.replies.removeFirst()) }
        if let failure = self.failure { return eventLoop.makeFailedFuture(failure) }
        guard self.waiter == nil else {
            return eventLoop.makeFailedFuture(SMTPError(.protocolViolation, "two commands waiting for one reply"))
        }
        let promise = eventLoop.makePromise(of: SMTPReply.self)
        let scheduled = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.fail(SMTPError(.timeout, "no reply from the relay within \(timeout.nanoseconds / 1_000_000_000) s"))
        }
        self.waiter = (promise, scheduled)
        return promise.futureResult
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        self.buffer.writeBuffer(&incoming)
        while self.failure == nil, let newline = self.buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            var bytes = self.buffer.readBytes(length: newline - self.buffer.readerIndex + 1) ?? []
            while bytes.last == 0x0A || bytes.last == 0x0D { bytes.removeLast() }
            self.parse(line: String(decoding: bytes, as: UTF8.self))
        }
        if self.buffer.readableBytes > Self.maximumLineLength {
            self.fail(SMTPError(.protocolViolation, "reply line longer than \(Self.maximumLineLength) bytes"))
        }
        self.buffer.discardReadBytes()
    }

    /// One line: `NNN-text` continues the reply, `NNN text` or `NNN` ends it; every line of a reply has the same code.
    private func parse(line: String) {
        let characters = Array(line.utf8)
        guard characters.count >= 3, characters[0...2].allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let code = Int(String(decoding: characters[0...2], as: UTF8.self)), (200...599).contains(code),
              characters.count == 3 || characters[3] == UInt8(ascii: " ") || characters[3] == UInt8(ascii: "-") else {
            self.fail(SMTPError(.protocolViolation, "malformed reply line '\(line.prefix(80))'"))
            return
        }
        if let current = self.code, current != code {
            self.fail(SMTPError(.protocolViolation, "reply lines with different codes (\(current), \(code))"))
            return
        }
        self.lines.append(characters.count > 4 ? String(decoding: characters[4...], as: UTF8.self) : "")
        if characters.count > 3 && characters[3] == UInt8(ascii: "-") {
            self.code = code
            if self.lines.count > Self.maximumLinesPerReply { self.fail(SMTPError(.protocolViolation, "reply of more than \(Self.maximumLinesPerReply) lines")) }
            return
        }
        let reply = SMTPReply(code: code, lines: self.lines)
        self.code = nil
        self.lines = []
        if let waiter = self.waiter {
            self.waiter = nil
            waiter.timeout.cancel()
            waiter.promise.succeed(reply)
        } else {
            self.replies.append(reply)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.fail(SMTPError(.protocolViolation, "the relay closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? SMTPError {
            self.fail(error)
        } else if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            self.fail(SMTPError(.tls, "TLS with the relay failed: \(error)"))
        } else {
            self.fail(SMTPError(.protocolViolation, "connection error: \(error)"))
        }
    }

    /// Records the first failure, fails the waiting reply and closes the connection.
    func fail(_ error: SMTPError) {
        if self.failure == nil { self.failure = error }
        if let waiter = self.waiter {
            self.waiter = nil
            waiter.timeout.cancel()
            waiter.promise.fail(self.failure ?? error)
        }
        self.context?.close(promise: nil)
    }
}
