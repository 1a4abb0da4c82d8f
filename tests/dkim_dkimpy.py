#!/usr/bin/env python3
"""Verifies the DKIM signatures of newsdesk's subscriber mail with dkimpy, a verifier
independent of the one in tests/dkim.rs (mail-auth).

`NEWSDESK_DKIM_EXPORT=DIR cargo test --test dkim` leaves NAME.eml (a signed message
as the SMTP server received it) and NAME.txt (the DNS TXT record of its key) in DIR;
this script checks every pair, then checks that a changed body fails. Exits non-zero
on the first failure. No network: the DNS lookup is answered from NAME.txt.
"""
import pathlib
import sys

import dkim


def verify(raw: bytes, record: bytes) -> bool:
    def dnsfunc(name, timeout=5):
        # The selector and domain newsdesk was configured with in the test.
        want = b"s1._domainkey.example.org."
        return record if name in (want, want.rstrip(b".")) else None

    return dkim.verify(raw, dnsfunc=dnsfunc)


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    folder = pathlib.Path(sys.argv[1])
    messages = sorted(folder.glob("*.eml"))
    if not messages:
        print(f"error: no .eml files in {folder}", file=sys.stderr)
        return 1
    for eml in messages:
        raw = eml.read_bytes()
        record = eml.with_suffix(".txt").read_bytes().strip()
        if not verify(raw, record):
            print(f"FAIL {eml.name}: dkimpy does not verify the signature", file=sys.stderr)
            return 1
        head, _, body = raw.partition(b"\r\n\r\n")
        tampered = head + b"\r\n\r\n" + body.replace(b"Kubernetes", b"Kubernetez", 1)
        if tampered == raw or verify(tampered, record):
            print(f"FAIL {eml.name}: a changed body still verifies", file=sys.stderr)
            return 1
        algo = b"ed25519" if b"k=ed25519" in record else b"rsa"
        print(f"ok   {eml.name}: {algo.decode()} signature verified by dkimpy {getattr(dkim, '__version__', '')}".rstrip())
    print(f"{len(messages)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
