#!/usr/bin/env python3
"""Interop check for the email digest: an independent MIME parser reads it.

Runs `newsdesk preview` on a copy of the bundled site, then parses `message.eml` with
Python's `email` package (policy.default, the strict modern parser) and fails on any
defect, on a missing or malformed header, or on a part that does not decode. When a
Chromium is installed it also renders `message.html` to a PNG kept as an artefact (for
people to look at; nothing judges it).

Usage: check_email.py --bin target/release/newsdesk [--artifacts DIR]
"""

import argparse
import email
import email.policy
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REQUIRED = [
    "From", "To", "Reply-To", "Subject", "Date", "Message-ID", "MIME-Version",
    "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Archive",
]


def fail(msg):
    print(f"check_email: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def preview(binary, workdir):
    for sub in ("posts", "email-templates"):
        shutil.copytree(os.path.join(REPO, sub), os.path.join(workdir, sub))
    shutil.copy(os.path.join(REPO, "config.toml"), os.path.join(workdir, "config.toml"))
    out = os.path.join(workdir, "out")
    env = dict(os.environ, SOURCE_DATE_EPOCH="1589313600")
    env.pop("NEWSDESK_SMTP_PASSWORD", None)
    run = subprocess.run(
        [binary, "-c", os.path.join(workdir, "config.toml"), "preview", "--out", out],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
    )
    if run.returncode != 0:
        fail(f"newsdesk preview exited {run.returncode}:\n{run.stdout}{run.stderr}")
    print(run.stdout, end="")
    return out


def check_message(path):
    raw = open(path, "rb").read()
    for n, line in enumerate(raw.split(b"\n"), 1):
        if len(line) > 998:
            fail(f"line {n} is {len(line)} octets (RFC 5322 allows 998)")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    if msg.defects:
        fail(f"message defects: {msg.defects}")
    for name in REQUIRED:
        if msg[name] is None:
            fail(f"missing header {name}")
    for name, value in msg.items():
        defects = getattr(value, "defects", ())
        if defects:
            fail(f"header {name}: {defects}")
    if msg["Subject"] != "LWKD: Week Ending May 10, 2020":
        fail(f"subject is {msg['Subject']!r}")
    if msg["Date"].datetime.timestamp() != 1589313600:
        fail(f"Date is {msg['Date']} (SOURCE_DATE_EPOCH was 1589313600)")
    if msg["List-Unsubscribe-Post"] != "List-Unsubscribe=One-Click":
        fail(f"List-Unsubscribe-Post is {msg['List-Unsubscribe-Post']!r}")
    if msg.get_content_type() != "multipart/alternative":
        fail(f"top-level type is {msg.get_content_type()}")
    parts = list(msg.iter_parts())
    kinds = [p.get_content_type() for p in parts]
    if kinds != ["text/plain", "text/html"]:
        fail(f"parts are {kinds}, expected text/plain then text/html")
    for p in parts:
        if p.defects:
            fail(f"{p.get_content_type()} defects: {p.defects}")
        if (p.get_content_charset() or "").lower() != "utf-8":
            fail(f"{p.get_content_type()} charset is {p.get_content_charset()}")
        content = p.get_content()
        if len(content) < 1000:
            fail(f"{p.get_content_type()} decodes to only {len(content)} characters")
    text, html = (p.get_content().replace("\r\n", "\n") for p in parts)
    if "Links:\n[1] https://" not in text:
        fail("the text part has no numbered link list")
    if "<style" not in html or 'style="' not in html:
        fail("the HTML part has no inlined CSS")
    print(f"check_email: {path}: parsed without defects; {len(parts)} parts, "
          f"text {len(text)} chars, HTML {len(html)} chars")


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html, artifacts):
    chromium = find_chromium()
    if not chromium:
        print("check_email: note: no Chromium installed: no screenshot of message.html")
        return
    os.makedirs(artifacts, exist_ok=True)
    for label, size in (("desktop", "700,2600"), ("phone", "380,1400")):
        png = os.path.join(artifacts, f"email-{label}.png")
        run = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--screenshot={png}", f"--window-size={size}", "file://" + os.path.abspath(html)],
            capture_output=True, text=True, timeout=120,
        )
        if run.returncode == 0 and os.path.exists(png):
            print(f"check_email: screenshot {png}")
        else:
            print(f"check_email: note: Chromium could not take a screenshot: {run.stderr.strip()[-300:]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--artifacts", default=os.path.join(REPO, "target", "ci-artifacts"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        out = preview(os.path.abspath(args.bin), work)
        check_message(os.path.join(out, "message.eml"))
        os.makedirs(args.artifacts, exist_ok=True)
        for f in ("message.eml", "message.html", "message.txt"):
            shutil.copy(os.path.join(out, f), os.path.join(args.artifacts, f))
        screenshot(os.path.join(out, "message.html"), args.artifacts)


if __name__ == "__main__":
    main()
