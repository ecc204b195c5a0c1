#!/usr/bin/env python3
"""Drives Sigillo's holder pages in headless Chromium (Debian's package) through Playwright.

1. Activation from the invitation link: choose the phone app, read the QR code off a screenshot with zbarimg,
   compute the TOTP with pyotp, choose username and password, read the user code shown once.
2. Lost password: ask for the link on the recovery page, take it from the mail the SMTP relay received (the
   test's aiosmtpd sink writes each message's parsed form to a folder), set a new password with an OTP; the same
   link then refuses.

Prints one line per step (ACTIVATED, USERCODE ..., RESET-OK, LINK-REFUSED) and exits non-zero on any failure.
Secrets come from the environment: SIGILLO_PASSWORD, SIGILLO_NEW_PASSWORD.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pyotp
from playwright.sync_api import sync_playwright


def qr_text(png_path):
    out = subprocess.run(["zbarimg", "--raw", "-q", png_path], capture_output=True, text=True, timeout=30)
    if out.returncode != 0 or not out.stdout.strip():
        raise SystemExit(f"zbarimg could not read the QR code: {out.stderr}")
    return out.stdout.strip()


def wait_for_link(mail_dir, path, recipient, seen, timeout=60):
    """The code in the first new mail (not in `seen`) to `recipient` whose link goes to `path`, waiting for delivery."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for name in sorted(os.listdir(mail_dir)):
            if not name.endswith(".json") or name in seen:
                continue
            with open(os.path.join(mail_dir, name), encoding="utf-8") as f:
                message = json.load(f)
            if recipient not in message["rcpt_tos"]:
                continue
            match = re.search(re.escape(path) + r"\?code=([A-Za-z0-9_\-]+)", message["body"])
            if match:
                return match.group(1)
        time.sleep(0.2)
    raise SystemExit(f"no mail with a {path} link reached the relay in {timeout} s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--code", required=True, help="invitation code")
    parser.add_argument("--username", required=True)
    parser.add_argument("--mail-dir", required=True, help="where the test SMTP relay writes the messages it receives")
    parser.add_argument("--email", required=True, help="the holder's registered address")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--shots", default=tempfile.mkdtemp())
    args = parser.parse_args()
    password = os.environ["SIGILLO_PASSWORD"]
    new_password = os.environ["SIGILLO_NEW_PASSWORD"]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox"])
        # The test server's certificate comes from a throwaway test CA the browser does not know.
        context = browser.new_context(ignore_https_errors=True)
        page = context.new_page()

        # 1. Activation.
        page.goto(f"{args.url}/activate?code={args.code}")
        page.check("input[name=device][value=totp]")
        page.click("#choose")
        page.wait_for_selector("#qr svg")
        shot = os.path.join(args.shots, "qr.png")
        page.locator("#qr").screenshot(path=shot)
        uri = qr_text(shot)
        parsed = urllib.parse.urlparse(uri)
        if parsed.scheme != "otpauth" or parsed.netloc != "totp":
            raise SystemExit(f"unexpected QR content: {uri}")
        secret = urllib.parse.parse_qs(parsed.query)["secret"][0]
        if page.inner_text("#secret").strip() != secret:
            raise SystemExit("the QR code and the printed key differ")
        totp = pyotp.TOTP(secret)
        page.fill("#username", args.username)
        page.fill("#password", password)
        page.fill("#password2", password)
        page.fill("#otp", totp.now())
        page.click("#confirm")
        page.wait_for_selector("#usercode")
        user_code = page.inner_text("#usercode").strip()
        if not re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}", user_code):
            raise SystemExit(f"unexpected user code {user_code!r}")
        page.screenshot(path=os.path.join(args.shots, "activated.png"), full_page=True)
        print("ACTIVATED")
        print("USERCODE", user_code)

        # 2. Lost password: recovery page → mail → link → new password + OTP.
        seen = set(os.listdir(args.mail_dir))
        page.goto(f"{args.url}/recovery")
        page.click("#lost-password")
        page.fill("#account", args.username)
        page.click("#submit")
        page.wait_for_selector("#result")
        code = wait_for_link(args.mail_dir, "/recovery/password", args.email, seen)
        page.goto(f"{args.url}/recovery/password?code={code}")
        page.fill("#newPassword", new_password)
        page.fill("#newPassword2", new_password)
        # The activation spent this step's code: use the next one (within the allowed drift).
        page.fill("#otp", totp.at(time.time() + 30))
        page.click("#submit")
        page.wait_for_selector("#result")
        if "password" not in page.inner_text("#result").lower():
            raise SystemExit("the reset did not confirm: " + page.content())
        print("RESET-OK")
        response = page.goto(f"{args.url}/recovery/password?code={code}")
        if response.status != 410 or not page.locator("#error").count():
            raise SystemExit(f"a used reset link still opened (HTTP {response.status})")
        print("LINK-REFUSED")
        browser.close()


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as error:  # a clear line for the Swift test's log
        print(f"FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
