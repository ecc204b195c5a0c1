"""Interop check: pyHanko's CSCSigner PAdES-signs PDFs through Sigillo's CSC v1 routes, then validates them.

Usage: pyhanko_csc.py --url URL --tls-ca FILE --trust-root FILE --username U --credential ID --count N --out DIR
Secrets come from the environment: SIGILLO_PASSWORD, SIGILLO_TOTP_SECRET (base32); SIGILLO_TOTP_LAST_STEP is
the TOTP step the activation used (each step is accepted once).
All N PDFs are signed in one batch: one credentials/authorize (one SAD for N hashes) and one signatures/signHash.
Prints one line per file, "VALID <path>" or "INVALID <path> <summary>", and exits non-zero on any failure.
"""
import argparse
import asyncio
import base64
import os
import ssl
import sys
import time

import aiohttp
import pyotp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.signers import csc_signer
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with a correct cross-reference table."""
    content = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


class PasswordAndTOTP(csc_signer.CSCAuthorizationManager):
    """Authorizes each batch with the holder's password and a fresh TOTP code (SCAL2: the hashes are bound)."""

    def __init__(self, session, session_info, credential_info, password, totp, last_step):
        super().__init__(session_info, credential_info)
        self.session = session
        self.password = password
        self.totp = totp
        self.last_step = last_step
        self.calls = 0

    async def next_code(self):
        """The code of the earliest step after the last one used and not before the current one: the server
        (current step ±1, each step once) accepts it for 30 s at least, however slow the machine."""
        current = int(time.time()) // 30
        step = max(current, self.last_step + 1)
        if step > current + 1:
            await asyncio.sleep((current + 1) * 30 - time.time() + 0.05)
        self.last_step = step
        return self.totp.at(step * 30)

    async def authorize_signature(self, hash_b64s):
        self.calls += 1
        body = self.format_csc_auth_request(pin=self.password, otp=await self.next_code(), hash_b64s=hash_b64s)
        url = self.csc_session_info.endpoint_url("credentials/authorize")
        async with self.session.post(url, headers=self.auth_headers, json=body) as response:
            data = await response.json()
            if response.status != 200:
                raise RuntimeError(f"authorize failed: {response.status} {data}")
        return self.parse_csc_auth_response(data)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--tls-ca", required=True)
    parser.add_argument("--trust-root", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--credential", required=True)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    password = os.environ["SIGILLO_PASSWORD"]
    totp = pyotp.TOTP(os.environ["SIGILLO_TOTP_SECRET"])

    ssl_context = ssl.create_default_context(cafile=args.tls_ca)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context)) as session:
        basic = base64.b64encode(f"{args.username}:{password}".encode()).decode()
        async with session.post(f"{args.url}/csc/v1/auth/login", headers={"Authorization": f"Basic {basic}"}, json={}) as response:
            login = await response.json()
            if response.status != 200:
                raise RuntimeError(f"login failed: {response.status} {login}")
        session_info = csc_signer.CSCServiceSessionInfo(service_url=args.url, credential_id=args.credential, oauth_token=login["access_token"])
        credential_info = await csc_signer.fetch_certs_in_csc_credential(session, session_info)
        auth = PasswordAndTOTP(session, session_info, credential_info, password, totp, int(os.environ.get("SIGILLO_TOTP_LAST_STEP", "0")))
        signer = csc_signer.CSCSigner(session, auth_manager=auth, batch_size=args.count)

        async def sign_one(index):
            source = os.path.join(args.out, f"document-{index}.pdf")
            target = os.path.join(args.out, f"document-{index}-signed.pdf")
            with open(source, "wb") as handle:
                handle.write(minimal_pdf(f"Sigillo interop document {index}"))
            with open(source, "rb") as handle:
                writer = IncrementalPdfFileWriter(handle)
                meta = signers.PdfSignatureMetadata(field_name="Signature1", md_algorithm="sha256")
                output = await signers.async_sign_pdf(writer, meta, signer=signer)
            with open(target, "wb") as handle:
                handle.write(output.getbuffer())
            return target

        targets = await asyncio.gather(*(sign_one(index) for index in range(args.count)))
        print(f"AUTHORIZE-CALLS {auth.calls}")

    with open(args.trust_root, "rb") as handle:
        pem = handle.read()
    from asn1crypto import pem as asn1_pem
    _, _, der = asn1_pem.unarmor(pem)
    context = ValidationContext(trust_roots=[asn1_x509.Certificate.load(der)])
    failures = 0
    for target in targets:
        with open(target, "rb") as handle:
            reader = PdfFileReader(handle)
            signature = reader.embedded_signatures[0]
            status = await async_validate_pdf_signature(signature, context)
            if status.intact and status.valid and status.trusted and status.bottom_line:
                print(f"VALID {target} {status.md_algorithm} {signature.signer_cert.subject.human_friendly}")
            else:
                failures += 1
                print(f"INVALID {target} {status.summary()}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    asyncio.run(main())
