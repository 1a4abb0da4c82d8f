#!/usr/bin/env bash
# The cost of reading bounces (issue 12): `bounces ingest` of one message piped in (what
# an MTA alias runs per bounce) and of a maildir of N bounces, against a list of
# SUBSCRIBERS subscribers, with the release binary.
#
#   bash bench/bounces/ingest.sh [SUBSCRIBERS] [N]     # defaults: 100000 1000
#   NEWSDESK_BIN=/path/to/newsdesk bash bench/bounces/ingest.sh   # another binary
#
# Each bounce is a Postfix-style DSN for a different subscriber, matched by its VERP
# address (the token derived from the subscriber's unsubscribe token), so every
# message is a hard bounce that changes one row. Prints wall time and peak memory
# (GNU time) of each step. The first bounce ever read fills the VERP token cache
# (`subscribers.verp`, one hash per subscriber); later ones only look it up.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
subs=${1:-100000}
n=${2:-1000}
bin="${NEWSDESK_BIN:-$root/target/release/newsdesk}"
[ -x "$bin" ] || cargo build --release --manifest-path "$root/Cargo.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$root/posts" "$root/email-templates" "$work/"
sed -n '1,/^\[email\]/p' "$root/config.toml" | sed '$d' > "$work/config.toml"
cat >> "$work/config.toml" <<'TOML'
[email]
from = "LWKD <lwkd@lwkd.example.org>"
return_path = "bounces+{token}@lwkd.example.org"

[subscribers]
unsubscribe_url = "https://lwkd.example.org/unsubscribe/{token}"
TOML
python3 - "$work" "$subs" <<'PY'
import sys
work, subs = sys.argv[1], int(sys.argv[2])
with open(f"{work}/list.csv", "w") as f:
    f.write("email\n")
    for i in range(subs):
        f.write(f"s{i:06d}@example.net\n")
PY
cd "$work"
"$bin" subscribers import list.csv 2>&1 | tail -1
# The VERP address of the first N subscribers: sha256("newsdesk-verp:" + token)[:16].
python3 - "$work" "$n" <<'PY'
import hashlib, os, sqlite3, sys
work, n = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(f"{work}/.newsdesk/newsdesk.db")
rows = db.execute("SELECT email, token FROM subscribers ORDER BY id LIMIT ?", (n + 2,)).fetchall()
os.makedirs(f"{work}/Maildir/new", exist_ok=True)
os.makedirs(f"{work}/Maildir/cur", exist_ok=True)
def dsn(email, token):
    verp = hashlib.sha256(f"newsdesk-verp:{token}".encode()).hexdigest()[:16]
    to = f"bounces+{verp}@lwkd.example.org"
    return (f"Return-Path: <>\nDelivered-To: {to}\nFrom: MAILER-DAEMON@mx.example.net\nTo: {to}\n"
            "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
            "--B\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
            "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
            f"Final-Recipient: rfc822; {email}\nAction: failed\nStatus: 5.1.1\n"
            f"Diagnostic-Code: smtp; 550 5.1.1 <{email}>: user unknown\n\n"
            f"--B\nContent-Type: text/rfc822-headers\n\nFrom: LWKD <lwkd@lwkd.example.org>\nTo: {email}\n\n--B--\n")
for i, (email, token) in enumerate(rows[:n]):
    with open(f"{work}/Maildir/new/{1785160000 + i}.M{i}P1.bench", "w") as f:
        f.write(dsn(email, token))
for name, (email, token) in zip(["first.eml", "later.eml"], rows[n:]):
    with open(f"{work}/{name}", "w") as f:
        f.write(dsn(email, token))
PY
step() {
  local label="$1"; shift
  /usr/bin/time -f "$label: %e s wall, %M KB peak" "$@" > /dev/null 2> "$work/time.out" || { cat "$work/time.out"; exit 1; }
  tail -1 "$work/time.out"
}
echo "list: $subs subscribers; maildir: $n bounces"
step "the first message on stdin (an MTA pipe)" sh -c "\"$bin\" bounces ingest < first.eml"
step "a later message on stdin" sh -c "\"$bin\" bounces ingest < later.eml"
step "maildir of $n" "$bin" bounces ingest --maildir Maildir
echo "bounced now: $(sqlite3 .newsdesk/newsdesk.db "SELECT COUNT(*) FROM subscribers WHERE status = 'bounced'" 2>/dev/null || python3 -c "import sqlite3; print(sqlite3.connect('.newsdesk/newsdesk.db').execute(\"SELECT COUNT(*) FROM subscribers WHERE status='bounced'\").fetchone()[0])")"
