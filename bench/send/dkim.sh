#!/usr/bin/env bash
# CPU per message of `send --subscribers` with DKIM (RSA-2048 and Ed25519) and without,
# for one or more newsdesk binaries, to bench/send's SMTP sink on 127.0.0.1.
#
#   bash bench/send/dkim.sh [--subscribers 5000] [BINARY...]
#
# Default binary: target/release/newsdesk (built). For each binary and key: a fresh
# database, N subscribers imported, the send timed with /usr/bin/time (user + sys CPU
# seconds, wall, peak memory). Keys are made with openssl for the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=5000
bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --subscribers) n="$2"; shift 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
if [ "${#bins[@]}" -eq 0 ]; then
  (cd "$root" && cargo build --release --quiet)
  bins=("$root/target/release/newsdesk")
fi
cargo build --release --quiet --locked --manifest-path "$root/bench/send/Cargo.toml" --target-dir "$root/target/bench-send"
work=$(mktemp -d /tmp/newsdesk-dkim-bench.XXXXXX)
sink_pid=""
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
. "$root/bench/send/sink.sh"
start_sink "$work"
openssl genrsa -traditional -out "$work/rsa.pem" 2048 2>/dev/null || openssl genrsa -out "$work/rsa.pem" 2048 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$work/ed25519.pem" 2>/dev/null
cp -r "$root/posts" "$root/email-templates" "$work/"
awk -v n="$n" 'BEGIN { print "email,name"; for (i = 0; i < n; i++) printf "s%06d@example.org,Subscriber %d\n", i, i }' > "$work/list.csv"
printf 'binary,key,messages,user_s,sys_s,cpu_ms_per_message,wall_s,max_rss_kb\n'
for bin in "${bins[@]}"; do
  for key in none rsa ed25519; do
    rm -rf "$work/db"
    awk '/^\[smtp\]/ { exit } { print }' "$root/config.toml" > "$work/config.toml"
    if [ "$key" != none ]; then
      # [email.dkim] belongs after [email]'s keys, before the next section.
      printf '\n[email.dkim]\ndomain = "example.org"\nselector = "s1"\nkey_file = "%s"\n' "$work/$key.pem" >> "$work/config.toml"
    fi
    cat >> "$work/config.toml" <<TOML

[smtp]
host = "127.0.0.1"
port = $port
security = "none"
connections = 4

[subscribers]
database = "$work/db/newsdesk.db"
unsubscribe_url = "https://lwkd.example.org/unsubscribe/{token}"
TOML
    "$bin" -c "$work/config.toml" subscribers import "$work/list.csv" > /dev/null 2>&1
    /usr/bin/time -f "%U %S %e %M" -o "$work/time.txt" "$bin" -c "$work/config.toml" send --subscribers --yes > /dev/null 2> "$work/send.err" \
      || { cat "$work/send.err" >&2; exit 1; }
    read -r user sys wall rss < "$work/time.txt"
    printf '%s,%s,%s,%s,%s,%s,%s,%s\n' "$bin" "$key" "$n" "$user" "$sys" \
      "$(awk -v u="$user" -v s="$sys" -v n="$n" 'BEGIN { printf "%.3f", (u + s) * 1000 / n }')" "$wall" "$rss"
  done
done
