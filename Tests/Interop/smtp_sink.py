#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the mail tests.

Prints the port on stdout once it accepts connections. Each accepted message is written to --dir as N.eml (the raw
bytes after DATA) and N.json (the envelope and what Python's email parser reads from it: decoded headers, body,
defects), the .json last and renamed into place, so a reader never sees half a message.

Stops when stdin closes (the test process ended) or after --timeout seconds.
"""
import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult


def parse_arguments():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True, help="folder for the received messages")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--tls-cert", help="PEM certificate chain: offer STARTTLS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--require-starttls", action="store_true", help="refuse MAIL before STARTTLS")
    parser.add_argument("--auth-user", help="require AUTH with this user; the password is in $SMTP_SINK_PASSWORD")
    parser.add_argument("--exclude-mechanism", action="append", default=[], help="do not offer this AUTH mechanism")
    parser.add_argument("--reject-rcpt", action="append", default=[], help="550 for recipients containing this text")
    parser.add_argument("--defer-rcpt", action="append", default=[], help="451 for recipients containing this text")
    parser.add_argument("--timeout", type=float, default=300, help="seconds before exiting by itself")
    return parser.parse_args()


class Sink:
    def __init__(self, folder, reject, defer):
        self.folder = folder
        self.reject = reject
        self.defer = defer
        self.count = len([name for name in os.listdir(folder) if name.endswith(".json")])

    async def handle_RCPT(self, server, session, envelope, address, options):
        if any(text in address for text in self.reject):
            return "550 5.1.1 <%s>: recipient rejected" % address
        if any(text in address for text in self.defer):
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.folder, "%04d" % self.count)
        raw = envelope.original_content
        with open(base + ".eml", "wb") as file:
            file.write(raw)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        defects = [repr(defect) for defect in message.defects]
        headers = {}
        for name in ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"]:
            value = message[name]
            headers[name] = None if value is None else str(value)
            defects += [repr(defect) for defect in getattr(value, "defects", ())]
        sender = message["From"].addresses[0] if message["From"] is not None else None
        date = message["Date"].datetime if message["Date"] is not None else None
        info = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "auth_user": session.auth_data.login.decode() if session.authenticated and session.auth_data else None,
            "auth_mechanism": getattr(session, "sink_mechanism", None),
            "headers": headers,
            "from_address": sender.addr_spec if sender else None,
            "from_name": sender.display_name if sender else None,
            "date_iso": date.isoformat() if date else None,
            "content_type": message.get_content_type(),
            "charset": message.get_content_charset(),
            "body": message.get_content(),
            "defects": defects,
            "longest_line": max(len(line) for line in raw.split(b"\r\n")),
            "bare_lf": b"\n" in raw.replace(b"\r\n", b""),
        }
        with open(base + ".tmp", "w", encoding="utf-8") as file:
            json.dump(info, file, ensure_ascii=False)
        os.rename(base + ".tmp", base + ".json")
        return "250 2.0.0 OK queued as %04d" % self.count


def make_authenticator(user, password):
    def authenticate(server, session, envelope, mechanism, data):
        session.sink_mechanism = mechanism
        ok = data is not None and data.login == user.encode() and data.password == password.encode()
        return AuthResult(success=ok, auth_data=data if ok else None)
    return authenticate


async def main():
    arguments = parse_arguments()
    os.makedirs(arguments.dir, exist_ok=True)
    handler = Sink(arguments.dir, arguments.reject_rcpt, arguments.defer_rcpt)
    tls_context = None
    if arguments.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(arguments.tls_cert, arguments.tls_key)
    options = dict(hostname="sink.test", tls_context=tls_context, require_starttls=arguments.require_starttls)
    if arguments.auth_user:
        password = os.environ.get("SMTP_SINK_PASSWORD", "")
        options.update(authenticator=make_authenticator(arguments.auth_user, password), auth_required=True,
                       auth_require_tls=True, auth_exclude_mechanism=arguments.exclude_mechanism)
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(handler, **options), host="127.0.0.1", port=arguments.port)
    await serve(server, arguments.timeout)


async def serve(server, timeout):
    """Prints the server's port, then runs it until stdin closes (the test ended) or `timeout` seconds pass."""
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.create_future()

    def on_stdin():
        if not sys.stdin.buffer.read1(4096) and not stdin_closed.done():
            stdin_closed.set_result(None)

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    try:
        await asyncio.wait_for(stdin_closed, timeout=timeout)
    except asyncio.TimeoutError:
        pass
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
