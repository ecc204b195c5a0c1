#!/usr/bin/env python3
"""A misbehaving SMTP relay on 127.0.0.1, for the client's edge cases (aiosmtpd is too well-behaved for them).

Prints the port on stdout once it listens; stops when stdin closes or after --timeout seconds.

--mode silent   accepts connections and never says a word (reply timeouts)
--mode inject   offers STARTTLS, then sends "220 go ahead" and a forged "250" in the same packet (the STARTTLS
                command injection of CVE-2011-0411; a client must not read the forged reply as part of TLS)
--mode ragged   a correct session written awkwardly: a multi-line greeting sent one byte at a time, replies with
                bare LF, a reply line of only the code, several replies merged in one write. Accepted messages go
                to --dir as N.eml.
"""
import argparse
import asyncio
import os

from smtp_sink import serve


async def silent(reader, writer):
    await reader.read()  # until the client gives up and closes
    writer.close()


async def inject(reader, writer):
    writer.write(b"220 relay.test ESMTP\r\n")
    while line := await reader.readline():
        command = line.strip().upper()
        if command.startswith(b"EHLO"):
            writer.write(b"250-relay.test\r\n250 STARTTLS\r\n")
        elif command == b"STARTTLS":
            writer.write(b"220 2.0.0 go ahead\r\n250 2.0.0 forged\r\n")
        else:
            writer.write(b"250 OK\r\n")
        await writer.drain()
    writer.close()


def ragged_handler(folder):
    counter = [0]

    async def handle(reader, writer):
        for byte in b"220-relay.test first greeting line\r\n220-\r\n220 ready\r\n":
            writer.write(bytes([byte]))
            await writer.drain()
        while line := await reader.readline():
            command = line.strip().upper()
            if command.startswith(b"EHLO"):
                writer.write(b"250-relay.test\n250-PIPELINING\n250-SIZE 1000000\n250 8BITMIME\n")
            elif command.startswith(b"MAIL") or command.startswith(b"RCPT") or command == b"RSET":
                writer.write(b"250\r\n")
            elif command == b"DATA":
                writer.write(b"354 go on\r\n")
                await writer.drain()
                data = bytearray()
                while not data.endswith(b"\r\n.\r\n"):
                    chunk = await reader.readline()
                    if not chunk:
                        return
                    data += chunk
                lines = bytes(data[:-5]).split(b"\r\n")
                message = b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines) + b"\r\n"
                counter[0] += 1
                with open(os.path.join(folder, "%04d.eml" % counter[0]), "wb") as file:
                    file.write(message)
                writer.write(b"250-2.0.0 queued\r\n250 2.0.0 as %04d\r\n" % counter[0])
            elif command == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"502 5.5.2 not implemented\r\n")
            await writer.drain()
        writer.close()

    return handle


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["silent", "inject", "ragged"], required=True)
    parser.add_argument("--dir", default=".")
    parser.add_argument("--timeout", type=float, default=300)
    arguments = parser.parse_args()
    handler = {"silent": silent, "inject": inject, "ragged": ragged_handler(arguments.dir)}[arguments.mode]
    await serve(await asyncio.start_server(handler, host="127.0.0.1", port=0), arguments.timeout)


if __name__ == "__main__":
    asyncio.run(main())
