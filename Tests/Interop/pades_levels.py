"""Interop check: pyHanko PAdES-signs PDFs through Sigillo's CSC v1 routes at the levels relying parties keep:
B-T (a signature time-stamp from Sigillo's TSA), B-LT (plus validation data fetched over plain HTTP from the
publication listener, in the DSS) and B-LTA (plus a document time-stamp).

Usage: pades_levels.py --url URL --tls-ca FILE --trust-root FILE --pki-url URL --username U --credential ID --out DIR
Secrets come from the environment: SIGILLO_PASSWORD, SIGILLO_HOTP_SECRET (base32) and SIGILLO_HOTP_COUNTER (the next
counter of the holder's display token). Prints "SIGNED <level> <path>" per file; validation is the caller's, with
the pyhanko command line, as a relying party would.
"""
import argparse
import asyncio
import base64
import os
import ssl

import aiohttp
import pyotp
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.signers import csc_signer
from pyhanko.sign.timestamps.aiohttp_client import AIOHttpTimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

from pyhanko_csc import PasswordAndTOTP, minimal_pdf


class PasswordAndHOTP(PasswordAndTOTP):
    """Authorizes each signature with the holder's password and the display token's next code (no clock involved)."""

    def __init__(self, session, session_info, credential_info, password, hotp, counter):
        super().__init__(session, session_info, credential_info, password, None, 0)
        self.hotp = hotp
        self.counter = counter

    async def next_code(self):
        code = self.hotp.at(self.counter)
        self.counter += 1
        return code


async def main():
    parser = argparse.ArgumentParser()
    for name in ["--url", "--tls-ca", "--trust-root", "--pki-url", "--username", "--credential", "--out"]:
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    password = os.environ["SIGILLO_PASSWORD"]
    hotp = pyotp.HOTP(os.environ["SIGILLO_HOTP_SECRET"])
    with open(args.trust_root, "rb") as handle:
        _, _, der = asn1_pem.unarmor(handle.read())
    root = asn1_x509.Certificate.load(der)

    ssl_context = ssl.create_default_context(cafile=args.tls_ca)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context)) as session, aiohttp.ClientSession() as plain:
        basic = base64.b64encode(f"{args.username}:{password}".encode()).decode()
        async with session.post(f"{args.url}/csc/v1/auth/login", headers={"Authorization": f"Basic {basic}"}, json={}) as response:
            login = await response.json()
            if response.status != 200:
                raise RuntimeError(f"login failed: {response.status} {login}")
        session_info = csc_signer.CSCServiceSessionInfo(service_url=args.url, credential_id=args.credential, oauth_token=login["access_token"])
        credential_info = await csc_signer.fetch_certs_in_csc_credential(session, session_info)
        auth = PasswordAndHOTP(session, session_info, credential_info, password, hotp, int(os.environ["SIGILLO_HOTP_COUNTER"]))
        signer = csc_signer.CSCSigner(session, auth_manager=auth, batch_size=1)
        timestamper = AIOHttpTimeStamper(f"{args.pki_url}/tsa", plain)

        for level in ["B-T", "B-LT", "B-LTA"]:
            source = os.path.join(args.out, f"{level}.pdf")
            target = os.path.join(args.out, f"{level}-signed.pdf")
            with open(source, "wb") as handle:
                handle.write(minimal_pdf(f"Sigillo PAdES {level}"))
            long_term = level != "B-T"
            context = ValidationContext(trust_roots=[root], allow_fetching=True, fetcher_backend=AIOHttpFetcherBackend(plain)) if long_term else None
            meta = signers.PdfSignatureMetadata(
                field_name="Signature1", md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES,
                embed_validation_info=long_term, use_pades_lta=level == "B-LTA", validation_context=context)
            with open(source, "rb") as handle:
                writer = IncrementalPdfFileWriter(handle)
                output = await signers.async_sign_pdf(writer, meta, signer=signer, timestamper=timestamper)
            with open(target, "wb") as handle:
                handle.write(output.getbuffer())
            print(f"SIGNED {level} {target}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
