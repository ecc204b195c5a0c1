"""Interop check: pyHanko's qualification assessor (pyhanko.sign.validation.qualified) against Sigillo's certificates.

The trusted list is built from the TSPService entry `sigillo ca trusted-list` writes: the entry goes into a complete
ETSI TS 119 612 trust service status list (scheme information, one trust service provider), which is XAdES-signed
with a throw-away scheme operator key, and parsed with pyHanko's `trust_list_to_registry` (which checks that
signature) into a TSP registry. A validator that knows only this list then decides.

Usage:
  qualified.py assess --entry ENTRY.xml --cert HOLDER.pem --trust CA.pem [--intermediate FILE]... [--fetch] --out DIR
      Validates the certificate's path to --trust (PKIX, no revocation; --fetch: intermediates from the CA issuers
      URLs), then assesses its qualification with the
      registry. Prints one JSON line: {"path": "ok"|error, "qualified": bool, "type": ..., "qscd": ..., "service": ...}.
  qualified.py pades --entry ENTRY.xml --out DIR --url URL --tls-ca FILE --username U --credential ID
      Signs a PDF through the CSC v1 routes (as pyhanko_csc.py, secrets from the same environment variables), then
      validates it with pyHanko's AdES validation for basic signatures (ETSI EN 319 102-1 §5.3) and a trust manager
      made of the trusted list alone, requiring a qualified signature (revocation is not checked here: the
      relying-party tests do that). Prints one JSON line with the AdES indication and the qualification.
Exits non-zero only when the script itself fails; the caller judges the JSON.
"""
import argparse
import asyncio
import base64
import datetime
import json
import os
import ssl
import sys

from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from lxml import etree


def load_certs(path):
    with open(path, "rb") as handle:
        data = handle.read()
    if asn1_pem.detect(data):
        return [asn1_x509.Certificate.load(der) for _, _, der in asn1_pem.unarmor(data, multiple=True)]
    return [asn1_x509.Certificate.load(data)]


TSL = "http://uri.etsi.org/02231/v2#"


def trust_service_status_list(entry_xml: bytes) -> etree._Element:
    """A complete TS 119 612 list with one TSP whose only service is `entry_xml` (a tsl:TSPService element)."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    issued = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    next_update = (now + datetime.timedelta(days=180)).strftime("%Y-%m-%dT%H:%M:%SZ")
    skeleton = f"""<tsl:TrustServiceStatusList xmlns:tsl="{TSL}" Id="TrustServiceStatusList" TSLTag="http://uri.etsi.org/19612/TSLTag">
  <tsl:SchemeInformation>
    <tsl:TSLVersionIdentifier>6</tsl:TSLVersionIdentifier>
    <tsl:TSLSequenceNumber>1</tsl:TSLSequenceNumber>
    <tsl:TSLType>http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUgeneric</tsl:TSLType>
    <tsl:SchemeOperatorName><tsl:Name xml:lang="en">Test supervisory body</tsl:Name></tsl:SchemeOperatorName>
    <tsl:SchemeOperatorAddress>
      <tsl:PostalAddresses><tsl:PostalAddress xml:lang="en"><tsl:StreetAddress>Via di Test 1</tsl:StreetAddress><tsl:Locality>Roma</tsl:Locality><tsl:CountryName>IT</tsl:CountryName></tsl:PostalAddress></tsl:PostalAddresses>
      <tsl:ElectronicAddress><tsl:URI xml:lang="en">mailto:tl@example.it</tsl:URI></tsl:ElectronicAddress>
    </tsl:SchemeOperatorAddress>
    <tsl:SchemeName><tsl:Name xml:lang="en">IT:Test trusted list</tsl:Name></tsl:SchemeName>
    <tsl:SchemeInformationURI><tsl:URI xml:lang="en">https://tl.example.it/</tsl:URI></tsl:SchemeInformationURI>
    <tsl:StatusDeterminationApproach>http://uri.etsi.org/TrstSvc/TrustedList/StatusDetn/EUappropriate</tsl:StatusDeterminationApproach>
    <tsl:SchemeTypeCommunityRules><tsl:URI xml:lang="en">http://uri.etsi.org/TrstSvc/TrustedList/schemerules/EUcommon</tsl:URI></tsl:SchemeTypeCommunityRules>
    <tsl:SchemeTerritory>IT</tsl:SchemeTerritory>
    <tsl:PolicyOrLegalNotice><tsl:TSLLegalNotice xml:lang="en">Test list, no legal value.</tsl:TSLLegalNotice></tsl:PolicyOrLegalNotice>
    <tsl:HistoricalInformationPeriod>65535</tsl:HistoricalInformationPeriod>
    <tsl:ListIssueDateTime>{issued}</tsl:ListIssueDateTime>
    <tsl:NextUpdate><tsl:dateTime>{next_update}</tsl:dateTime></tsl:NextUpdate>
  </tsl:SchemeInformation>
  <tsl:TrustServiceProviderList>
    <tsl:TrustServiceProvider>
      <tsl:TSPInformation>
        <tsl:TSPName><tsl:Name xml:lang="en">Sigillo test provider</tsl:Name></tsl:TSPName>
        <tsl:TSPAddress>
          <tsl:PostalAddresses><tsl:PostalAddress xml:lang="en"><tsl:StreetAddress>Via di Test 2</tsl:StreetAddress><tsl:Locality>Roma</tsl:Locality><tsl:CountryName>IT</tsl:CountryName></tsl:PostalAddress></tsl:PostalAddresses>
          <tsl:ElectronicAddress><tsl:URI xml:lang="en">https://sigillo.example.it/</tsl:URI></tsl:ElectronicAddress>
        </tsl:TSPAddress>
        <tsl:TSPInformationURI><tsl:URI xml:lang="en">https://sigillo.example.it/</tsl:URI></tsl:TSPInformationURI>
      </tsl:TSPInformation>
      <tsl:TSPServices/>
    </tsl:TrustServiceProvider>
  </tsl:TrustServiceProviderList>
</tsl:TrustServiceStatusList>"""
    root = etree.fromstring(skeleton.encode())
    service = etree.fromstring(entry_xml)
    if service.tag != f"{{{TSL}}}TSPService":
        raise SystemExit(f"the entry is a {service.tag}, not a tsl:TSPService")
    root.find(f".//{{{TSL}}}TSPServices").append(service)
    return root


def signed_registry(entry_path, out_dir):
    """The TSP registry of the list, XAdES-signed by a scheme operator key made now and checked by pyHanko."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    from signxml.xades import XAdESSigner
    from pyhanko.sign.validation.qualified.eutl_parse import trust_list_to_registry

    with open(entry_path, "rb") as handle:
        root = trust_service_status_list(handle.read())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "IT"), x509.NameAttribute(NameOID.COMMON_NAME, "Test TL signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
            .sign(key, hashes.SHA256()))
    signed = XAdESSigner().sign(root, key=key, cert=[cert])
    xml = etree.tostring(signed, xml_declaration=True, encoding="UTF-8").decode()
    with open(os.path.join(out_dir, "trusted-list.xml"), "w") as handle:
        handle.write(xml)
    tlso = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    registry, errors = trust_list_to_registry(xml, [tlso])
    if errors:
        raise SystemExit(f"trusted list errors: {errors}")
    return registry


def describe(result):
    status = result.status
    return {
        "qualified": status.qualified,
        "type": status.qc_type.name,
        "qscd": status.qc_key_security.name,
        "service": result.service_definition.base_info.service_name if result.service_definition else None,
    }


async def assess(args):
    from pyhanko.sign.validation.qualified.assess import QualificationAssessor
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.policy_decl import NO_REVOCATION, CertRevTrustPolicy

    registry = signed_registry(args.entry, args.out)
    (cert,) = load_certs(args.cert)
    anchors = load_certs(args.trust)
    intermediates = [c for path in args.intermediate for c in load_certs(path)]
    # PKIX first, with the CA as anchor: a certificate can be valid and still not qualified.
    # --fetch: the intermediates come from the certificates' CA issuers URLs (AIA), as a validator finds them.
    context = ValidationContext(trust_roots=anchors, other_certs=intermediates, allow_fetching=args.fetch,
                                revinfo_policy=CertRevTrustPolicy(NO_REVOCATION))
    validator = CertificateValidator(cert, intermediate_certs=intermediates, validation_context=context)
    try:
        path = await validator.async_validate_usage(key_usage={"non_repudiation"})
    except Exception as error:  # noqa: BLE001 - reported to the caller
        print(json.dumps({"path": f"{type(error).__name__}: {error}"}))
        return
    result = QualificationAssessor(registry).check_entity_cert_qualified(path)
    print(json.dumps({"path": "ok", **describe(result)}))


async def pades(args):
    import aiohttp
    import pyotp
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import signers
    from pyhanko.sign.signers import csc_signer
    from pyhanko.sign.validation.ades import ades_basic_validation
    from pyhanko.sign.validation.policy_decl import QualificationRequirements, SignatureValidationSpec
    from pyhanko.sign.validation.qualified.tsp import TSPTrustManager
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.policy_decl import NO_REVOCATION, CertRevTrustPolicy

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from pyhanko_csc import PasswordAndTOTP, minimal_pdf

    registry = signed_registry(args.entry, args.out)
    password = os.environ["SIGILLO_PASSWORD"]
    totp = pyotp.TOTP(os.environ["SIGILLO_TOTP_SECRET"])
    source = os.path.join(args.out, "document.pdf")
    target = os.path.join(args.out, "document-signed.pdf")
    with open(source, "wb") as handle:
        handle.write(minimal_pdf("Sigillo qualified signature"))
    ssl_context = ssl.create_default_context(cafile=args.tls_ca)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context)) as session:
        basic = base64.b64encode(f"{args.username}:{password}".encode()).decode()
        async with session.post(f"{args.url}/csc/v1/auth/login", headers={"Authorization": f"Basic {basic}"}, json={}) as response:
            login = await response.json()
            if response.status != 200:
                raise SystemExit(f"login failed: {response.status} {login}")
        info = csc_signer.CSCServiceSessionInfo(service_url=args.url, credential_id=args.credential, oauth_token=login["access_token"])
        credential = await csc_signer.fetch_certs_in_csc_credential(session, info)
        auth = PasswordAndTOTP(session, info, credential, password, totp, int(os.environ.get("SIGILLO_TOTP_LAST_STEP", "0")))
        signer = csc_signer.CSCSigner(session, auth_manager=auth)
        with open(source, "rb") as handle:
            writer = IncrementalPdfFileWriter(handle)
            meta = signers.PdfSignatureMetadata(field_name="Signature1", md_algorithm="sha256")
            output = await signers.async_sign_pdf(writer, meta, signer=signer)
        with open(target, "wb") as handle:
            handle.write(output.getbuffer())
    chain_length = len(credential.chain) + 1

    # The validator knows the trusted list and nothing else: no trust roots of its own. The signature is PAdES B-B
    # (no time-stamp): EN 319 102-1's validation process for basic signatures, the qualification required.
    spec = SignatureValidationSpec(
        cert_validation_policy=CertValidationPolicySpec(
            trust_manager=TSPTrustManager(registry), revinfo_policy=CertRevTrustPolicy(NO_REVOCATION)),
        qualification_requirements=QualificationRequirements(),
    )
    with open(target, "rb") as handle:
        reader = PdfFileReader(handle)
        signature = reader.embedded_signatures[0]
        result = await ades_basic_validation(signature.signed_data, spec, raw_digest=signature.compute_digest())
    status = result.api_status
    qualification = status.qualification_result if status is not None else None
    print(json.dumps({
        "indication": result.ades_subindic.status.name,
        "subindication": result.ades_subindic.standard_name if hasattr(result.ades_subindic, "standard_name") else str(result.ades_subindic),
        "failure": result.failure_msg,
        "chain": chain_length,
        **(describe(qualification) if qualification else {"qualified": None}),
    }))


def main():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("assess")
    one.add_argument("--entry", required=True)
    one.add_argument("--cert", required=True)
    one.add_argument("--trust", required=True)
    one.add_argument("--intermediate", action="append", default=[])
    one.add_argument("--fetch", action="store_true")
    one.add_argument("--out", required=True)
    two = commands.add_parser("pades")
    for name in ["--entry", "--out", "--url", "--tls-ca", "--username", "--credential"]:
        two.add_argument(name, required=True)
    args = parser.parse_args()
    asyncio.run(assess(args) if args.command == "assess" else pades(args))


if __name__ == "__main__":
    main()
