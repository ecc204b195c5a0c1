#!/usr/bin/env python3
"""A wallet-style CSC v2 client that knows only the CSC v2 and OAuth2 specifications signs hashes with Sigillo.

The OAuth2 side is Authlib (PKCE S256, state, client_secret_basic / client_secret_post); the holder's page is driven in
headless Chromium (Debian's package) through Playwright; the redirect URI is intercepted in the browser (nothing listens
there). Requests are shaped like the EUDI Kotlin client's: RAR `authorization_details` of type credential with
`documentDigests: [{hash, label}]`, or plain `credentialID`, `numSignatures`, `hashes` (comma-separated base64url) and
`hashAlgorithmOID` with `scope=credential`; pushed (PAR: `client_id` + `request_uri` on the authorize URL) or not.

Prints one line per step and exits non-zero on the first failure. Secrets come from the environment:
SIGILLO_PASSWORD, SIGILLO_CLIENT_SECRET, SIGILLO_HOTP_SECRET (base32) and SIGILLO_HOTP_COUNTER (the next counter).
"""
import argparse
import base64
import hashlib
import json
import os
import re
import sys
import traceback
import urllib.parse

import pyotp
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.common.security import generate_token
from joserfc.jwk import ECKey
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from playwright.sync_api import sync_playwright

ECDSA_SHA256 = "1.2.840.10045.4.3.2"
SHA256 = "2.16.840.1.101.3.4.2.1"
RAR_TYPE = "https://cloudsignatureconsortium.org/2025/credential"


def b64(data):
    return base64.b64encode(data).decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def expect(condition, message):
    if not condition:
        raise SystemExit("FAILED: " + message)


class Wallet:
    def __init__(self, args, page):
        self.args = args
        self.page = page
        self.secret = os.environ["SIGILLO_CLIENT_SECRET"]
        self.password = os.environ["SIGILLO_PASSWORD"]
        self.hotp = pyotp.HOTP(os.environ["SIGILLO_HOTP_SECRET"])
        self.counter = int(os.environ["SIGILLO_HOTP_COUNTER"])
        self.http = self.trusting(requests.Session())
        self.callbacks = []
        # Nothing listens at the redirect URI: the browser's request is caught and answered here.
        page.route(re.compile("^" + re.escape(args.redirect_uri)), self.callback)

    def callback(self, route, request):
        self.callbacks.append(request.url)
        route.fulfill(status=200, content_type="text/plain", body="back in the wallet")

    def otp(self):
        code = self.hotp.at(self.counter)
        self.counter += 1
        return code

    def trusting(self, session):
        """`session` trusting the test server's TLS CA only (REQUESTS_CA_BUNDLE in the environment would win over it)."""
        session.trust_env = False
        session.verify = self.args.tls_ca
        return session

    def session(self, scope, auth_method, redirect_uri=None):
        return self.trusting(OAuth2Session(
            self.args.client_id, self.secret, scope=scope, redirect_uri=redirect_uri or self.args.redirect_uri, code_challenge_method="S256",
            token_endpoint_auth_method=auth_method))

    def authorization_url(self, client, verifier, pushed, **extra):
        """The URL the browser opens: the whole request in the query, or (PAR) client_id + request_uri."""
        url, state = client.create_authorization_url(f"{self.args.url}/oauth2/authorize", code_verifier=verifier, prompt="login", **extra)
        if not pushed:
            return url, state
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))
        auth = (self.args.client_id, self.secret) if client.token_endpoint_auth_method == "client_secret_basic" else None
        if auth is None:
            params["client_secret"] = self.secret
        answer = self.http.post(f"{self.args.url}/oauth2/pushed_authorize", data=params, auth=auth)
        expect(answer.status_code == 201, f"PAR answered {answer.status_code}: {answer.text}")
        pushed_request = answer.json()
        expect(pushed_request["request_uri"].startswith("urn:ietf:params:oauth:request_uri:") and pushed_request["expires_in"] == 60,
               f"PAR answer {pushed_request}")
        query = urllib.parse.urlencode({"client_id": self.args.client_id, "request_uri": pushed_request["request_uri"]})
        return f"{self.args.url}/oauth2/authorize?{query}", state

    def approve(self, url, expect_texts=(), wrong_password_first=False, client_name=None):
        """Opens the page, checks what it shows, signs in (password + OTP); returns the callback URL."""
        before = len(self.callbacks)
        self.page.goto(url)
        expect(self.page.inner_text("#client").strip() == (client_name or self.args.client_name), "the page does not name the client")
        body = self.page.inner_text("body")
        for text in expect_texts:
            expect(text in body, f"the page does not show {text!r}")
        if wrong_password_first:
            self.page.fill("#username", self.args.username)
            self.page.fill("#password", "not the password")
            self.page.fill("#otp", "000000")
            self.page.click("#approve")
            self.page.wait_for_selector("#error")
            code = self.page.get_attribute("#error", "data-code")
            expect(code == "invalid_password", f"a wrong password answered {code}")
            expect(self.page.locator("#approve").count() == 1, "the page is not shown again after a wrong password")
            print("WRONG-PASSWORD-REFUSED")
        self.page.fill("#username", self.args.username)
        self.page.fill("#password", self.password)
        self.page.fill("#otp", self.otp())
        self.page.click("#approve")
        self.page.wait_for_function(f"() => window.location.href.startsWith({json.dumps(self.args.redirect_uri)})")
        expect(len(self.callbacks) == before + 1, "the browser did not come back to the redirect URI")
        return self.callbacks[-1]

    def token(self, client, callback, verifier):
        return client.fetch_token(f"{self.args.url}/oauth2/token", authorization_response=callback, code_verifier=verifier)

    def csc(self, method, token, body):
        return self.http.post(f"{self.args.url}/csc/v2/{method}", json=body, headers={"Authorization": f"Bearer {token}"})

    def sign(self, token, digests, credential=None):
        return self.csc("signatures/signHash", token, {
            "credentialID": credential or self.args.credential, "hashes": [b64(d) for d in digests], "hashAlgorithmOID": SHA256,
            "signAlgo": ECDSA_SHA256, "operationMode": "S"})

    def credential_request(self, digests, labels, rar):
        if rar:
            detail = {"type": RAR_TYPE, "credentialID": self.args.credential, "numSignatures": len(digests), "hashAlgorithmOID": SHA256,
                      "documentDigests": [{"hash": b64(d), "label": label, "hashType": "DTBSR"} for d, label in zip(digests, labels)]}
            return {"authorization_details": json.dumps([detail])}
        return {"credentialID": self.args.credential, "numSignatures": str(len(digests)), "hashes": ",".join(b64url(d) for d in digests),
                "hashAlgorithmOID": SHA256}

    def credential_token(self, digests, labels, rar, pushed, auth_method, wrong_password_first=False):
        client = self.session(None if rar else "credential", auth_method)
        verifier = generate_token(48)
        url, _ = self.authorization_url(client, verifier, pushed, **self.credential_request(digests, labels, rar))
        shown = [self.args.credential] + (labels if rar else []) + [b64(d) for d in digests]
        callback = self.approve(url, expect_texts=shown, wrong_password_first=wrong_password_first)
        token = self.token(client, callback, verifier)
        return client, callback, verifier, token


def verify(certificate, digest, signature):
    certificate.public_key().verify(base64.b64decode(signature), digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--tls-ca", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-name", required=True)
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--credential", required=True)
    parser.add_argument("--jwt-client-id", required=True, help="a client that authenticates with private_key_jwt (SIGILLO_JWT_KEY_FILE)")
    parser.add_argument("--jwt-client-name", required=True)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox"])
        # The test server's certificate comes from a throwaway test CA the browser does not know.
        page = browser.new_context(ignore_https_errors=True).new_page()
        wallet = Wallet(args, page)
        http = wallet.http

        # 0. Discovery: CSC info and the RFC 8414 metadata.
        info = http.post(f"{args.url}/csc/v2/info", json={}).json()
        expect("oauth2code" in info["authType"] and info["oauth2"] and info.get("supportsRar") is True, f"info: {info}")
        metadata = http.get(f"{args.url}/.well-known/oauth-authorization-server").json()
        expect(metadata["code_challenge_methods_supported"] == ["S256"] and metadata["pushed_authorization_request_endpoint"].endswith("/oauth2/pushed_authorize")
               and "client_secret_post" in metadata["token_endpoint_auth_methods_supported"], f"metadata: {metadata}")
        print("DISCOVERY")

        # 1. scope=service (client_secret_basic, no PAR): an account token; v2 credentials/list as wallets parse it.
        client = wallet.session("service", "client_secret_basic")
        verifier = generate_token(48)
        url, state = wallet.authorization_url(client, verifier, pushed=False)
        callback = wallet.approve(url, expect_texts=["account"])
        returned = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(callback).query))
        expect(returned.get("state") == state and returned.get("iss") == metadata["issuer"], f"callback {returned}")
        service = wallet.token(client, callback, verifier)
        expect(service["token_type"] == "Bearer" and service["scope"] == "service", f"service token {service.keys()}")
        listed = wallet.csc("credentials/list", service["access_token"], {
            "credentialInfo": True, "certificates": "chain", "certInfo": True, "authInfo": True, "onlyValid": True}).json()
        expect(args.credential in listed["credentialIDs"] and listed.get("onlyValid") is True, f"list {listed}")
        entry = next(i for i in listed["credentialInfos"] if i["credentialID"] == args.credential)
        expect(entry["key"]["status"] == "enabled" and ECDSA_SHA256 in entry["key"]["algo"] and entry["key"]["len"] == 256, f"key {entry['key']}")
        expect(all(re.fullmatch(r"\d{14}Z", entry["cert"][f]) for f in ("validFrom", "validTo")) and entry["cert"]["status"] == "valid", f"cert {entry['cert']}")
        expect(entry["auth"]["mode"] in ("explicit", "oauth2code") and isinstance(entry["multisign"], int) and entry["SCAL"] == "2", f"auth {entry}")
        certificate = x509.load_der_x509_certificate(base64.b64decode(entry["cert"]["certificates"][0]))
        print("SERVICE-TOKEN", "credentials", len(listed["credentialIDs"]))
        refused = wallet.sign(service["access_token"], [hashlib.sha256(b"x").digest()])
        expect(refused.status_code == 400 and refused.json()["error"] == "invalid_request", f"service token on signHash: {refused.status_code} {refused.text}")
        print("SERVICE-TOKEN-NEVER-SIGNS")

        documents = [(f"contract-{n}.pdf", hashlib.sha256(os.urandom(64)).digest()) for n in range(6)]

        # 2. RAR authorization_details + PAR, client_secret_post; a wrong password first. Both documents signed, then
        #    the token is used up.
        labels, digests = [d[0] for d in documents[:2]], [d[1] for d in documents[:2]]
        _, _, _, token = wallet.credential_token(digests, labels, rar=True, pushed=True, auth_method="client_secret_post", wrong_password_first=True)
        expect(token["credentialID"] == args.credential and token["authorization_details"][0]["type"] == RAR_TYPE
               and len(token["authorization_details"][0]["documentDigests"]) == 2, f"RAR token {token}")
        expect(0 < token["expires_in"] <= 300, f"expires_in {token['expires_in']}")
        signed = wallet.sign(token["access_token"], digests)
        expect(signed.status_code == 200, f"signHash with the RAR token: {signed.text}")
        for digest, signature in zip(digests, signed.json()["signatures"]):
            verify(certificate, digest, signature)
        print("SIGNED rar+par", len(digests))
        again = wallet.sign(token["access_token"], digests)
        expect(again.status_code == 401 and again.json()["error"] == "invalid_token", f"a used token: {again.status_code} {again.text}")
        print("TOKEN-USED-TWICE-REFUSED")

        # 3. Plain parameters, no PAR, client_secret_basic: other hashes and another credential refused, then signed.
        labels, digests = [d[0] for d in documents[2:4]], [d[1] for d in documents[2:4]]
        _, _, _, token = wallet.credential_token(digests, labels, rar=False, pushed=False, auth_method="client_secret_basic")
        expect(token["scope"] == "credential" and "authorization_details" not in token, f"plain token {token}")
        other = wallet.sign(token["access_token"], [documents[5][1]])
        expect(other.status_code == 400 and other.json()["error"] == "invalid_request", f"other hash: {other.status_code} {other.text}")
        elsewhere = wallet.sign(token["access_token"], digests, credential="another-credential")
        expect(elsewhere.status_code == 400 and elsewhere.json()["error"] == "invalid_request", f"other credential: {elsewhere.status_code} {elsewhere.text}")
        listing = wallet.csc("credentials/list", token["access_token"], {})
        expect(listing.status_code == 403 and listing.json()["error"] == "insufficient_scope", f"credential token on list: {listing.text}")
        print("OTHER-HASH-REFUSED")
        signed = wallet.sign(token["access_token"], digests)
        expect(signed.status_code == 200, f"signHash with the plain token: {signed.text}")
        for digest, signature in zip(digests, signed.json()["signatures"]):
            verify(certificate, digest, signature)
        print("SIGNED plain", len(digests))

        # 4. Plain parameters + PAR: a wrong code_verifier, then the right one; the code replayed: refused, and the
        #    token it gave revoked.
        labels, digests = [documents[4][0]], [documents[4][1]]
        client = wallet.session("credential", "client_secret_basic")
        verifier = generate_token(48)
        url, _ = wallet.authorization_url(client, verifier, True, **wallet.credential_request(digests, labels, rar=False))
        callback = wallet.approve(url, expect_texts=[b64(digests[0])])
        try:
            wallet.token(client, callback, generate_token(48))
            raise SystemExit("FAILED: a wrong code_verifier got a token")
        except OAuthError as error:
            expect(error.error == "invalid_grant", f"wrong verifier: {error.error}")
        print("WRONG-VERIFIER-REFUSED")
        token = wallet.token(client, callback, verifier)
        try:
            wallet.token(client, callback, verifier)
            raise SystemExit("FAILED: a replayed code got a token")
        except OAuthError as error:
            expect(error.error == "invalid_grant", f"replayed code: {error.error}")
        revoked = wallet.sign(token["access_token"], digests)
        expect(revoked.status_code == 401 and revoked.json()["error"] == "invalid_token", f"token of a replayed code: {revoked.status_code} {revoked.text}")
        print("REPLAYED-CODE-REFUSED")

        # 5. RAR without PAR, then the token revoked (RFC 7009) before use.
        _, _, _, token = wallet.credential_token(digests, labels, rar=True, pushed=False, auth_method="client_secret_basic")
        answer = http.post(f"{args.url}/oauth2/revoke", data={"token": token["access_token"]}, auth=(args.client_id, wallet.secret))
        expect(answer.status_code == 200, f"revoke: {answer.status_code} {answer.text}")
        gone = wallet.sign(token["access_token"], digests)
        expect(gone.status_code == 401, f"a revoked token: {gone.status_code} {gone.text}")
        print("REVOKED rar")

        # 6. A redirect URI not registered: the page answers, nothing is redirected; PAR refuses it too.
        stranger = wallet.session("service", "client_secret_basic", redirect_uri="https://evil.example/cb")
        url, _ = stranger.create_authorization_url(f"{args.url}/oauth2/authorize", code_verifier=generate_token(48))
        before = len(wallet.callbacks)
        response = page.goto(url)
        expect(response.status == 400 and page.get_attribute("#error", "data-code") == "invalid_request" and page.url.startswith(args.url),
               f"unregistered redirect URI: HTTP {response.status} at {page.url}")
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))
        answer = http.post(f"{args.url}/oauth2/pushed_authorize", data=params, auth=(args.client_id, wallet.secret))
        expect(answer.status_code == 400 and answer.json()["error"] == "invalid_request", f"PAR with an unregistered redirect URI: {answer.text}")
        expect(len(wallet.callbacks) == before, "an unregistered redirect URI was followed")
        print("UNREGISTERED-REDIRECT-REFUSED")

        # 7. No PKCE: back to the client with invalid_request and its state. A wrong client secret: invalid_client.
        # (Playwright does not intercept a redirect of a GET navigation: the 303 is read as the browser gets it.)
        plain = OAuth2Session(args.client_id, wallet.secret, scope="service", redirect_uri=args.redirect_uri)
        url, state = plain.create_authorization_url(f"{args.url}/oauth2/authorize")
        answer = http.get(url, allow_redirects=False)
        location = answer.headers.get("Location", "")
        returned = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(location).query))
        expect(answer.status_code == 303 and location.startswith(args.redirect_uri + "?") and returned.get("error") == "invalid_request"
               and returned.get("state") == state and "code" not in returned, f"no PKCE: {answer.status_code} {location}")
        print("PKCE-REQUIRED")
        answer = http.post(f"{args.url}/oauth2/token", data={"grant_type": "authorization_code", "code": "x", "redirect_uri": args.redirect_uri,
                                                               "code_verifier": generate_token(48)}, auth=(args.client_id, "wrong secret"))
        expect(answer.status_code == 401 and answer.json()["error"] == "invalid_client", f"wrong client secret: {answer.status_code} {answer.text}")
        print("WRONG-CLIENT-SECRET-REFUSED")

        # 8. The holder refuses: access_denied with the state.
        client = wallet.session("service", "client_secret_basic")
        url, state = wallet.authorization_url(client, generate_token(48), pushed=True)
        page.goto(url)
        page.click("#deny")
        page.wait_for_function(f"() => window.location.href.startsWith({json.dumps(args.redirect_uri)})")
        returned = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(wallet.callbacks[-1]).query))
        expect(returned.get("error") == "access_denied" and returned.get("state") == state, f"denied: {returned}")
        print("DENIED")

        # 9. A client without a secret: private_key_jwt, ES256 assertions (Authlib), audience the metadata's token endpoint.
        with open(os.environ["SIGILLO_JWT_KEY_FILE"], encoding="utf-8") as f:
            key = ECKey.import_key(f.read())
        signer = wallet.trusting(OAuth2Session(args.jwt_client_id, key, scope="service", redirect_uri=args.redirect_uri, code_challenge_method="S256",
                                               token_endpoint_auth_method="private_key_jwt"))
        signer.register_client_auth_method(PrivateKeyJWT(metadata["token_endpoint"], alg="ES256"))
        verifier = generate_token(48)
        url, _ = signer.create_authorization_url(f"{args.url}/oauth2/authorize", code_verifier=verifier, prompt="login")
        callback = wallet.approve(url, expect_texts=["account"], client_name=args.jwt_client_name)
        token = signer.fetch_token(f"{args.url}/oauth2/token", authorization_response=callback, code_verifier=verifier)
        expect(token["scope"] == "service", f"private_key_jwt token {token.keys()}")
        listed = wallet.csc("credentials/list", token["access_token"], {})
        expect(listed.status_code == 200 and args.credential in listed.json()["credentialIDs"], f"list with the private_key_jwt token: {listed.text}")
        print("PRIVATE-KEY-JWT")
        print("HOTP-COUNTER", wallet.counter)
        browser.close()


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as error:  # a clear line for the Swift test's log, then where
        print(f"FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
