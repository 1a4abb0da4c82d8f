#!/usr/bin/env bash
# The cost of reading bounces (issue 12): `bounces ingest` of one message piped in (what
# an MTA alias runs per bounce) and of a maildir of N bounces, against a list of
# SUBSCRIBERS subscribers, with the release binary.
#
#   bash bench/bounces/ingest.sh [SUBSCRIBERS] [N] [ISSUES]   # defaults: 100000 1000 0
#   NEWSDESK_BIN=/path/to/newsdesk bash bench/bounces/ingest.sh   # another binary
#
# With ISSUES, the ledger first holds that many past issues sent to every subscriber
# (SUBSCRIBERS x ISSUES delivery rows, one in a thousand refused with a 550 and
# recorded as a bounce): what a list that has been sending for a while looks like to
# each ingest, which records the refusals no send recorded before it reads.
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
issues=${3:-0}
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
# The history: ISSUES issues, each sent to every subscriber.
python3 - "$work" "$issues" <<'PY'
import sqlite3, sys
work, issues = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(f"{work}/.newsdesk/newsdesk.db")
for k in range(issues):
    issue, at = f"https://lwkd.info/2025/w{k:03d}", f"2025-01-01T00:00:{k % 60:02d}.000Z"
    run = db.execute("INSERT INTO delivery_runs (issue, label, kind, started_at) VALUES (?, ?, 'subscribers', ?)",
                     (issue, f"w{k:03d}", at)).lastrowid
    db.execute("""INSERT INTO deliveries (issue, label, kind, subscriber_id, email, run_id, state, attempts,
                                          message_id, reply, sent_at, updated_at)
                  SELECT ?, ?, 'subscriber', id, email, ?,
                         CASE WHEN id % 1000 = 7 THEN 'failed_permanent' ELSE 'sent' END, 1,
                         '<w' || ? || '.' || id || '@lwkd.example.org>',
                         CASE WHEN id % 1000 = 7 THEN '550 5.1.1 user unknown' ELSE '250 ok' END, ?, ?
                  FROM subscribers""", (issue, f"w{k:03d}", run, k, at, at))
    db.execute("""INSERT INTO bounces (received_at, kind, subscriber_id, issue, address, status, permanent,
                                       reason, matched_by)
                  SELECT ?, 'send-time', subscriber_id, issue, email, '5.1.1', 1, 'user-unknown', 'send'
                  FROM deliveries WHERE issue = ? AND state = 'failed_permanent'""", (at, issue))
db.commit()
PY
[ "$issues" -gt 0 ] && echo "ledger: $issues issues, $((subs * issues)) delivery rows"
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
