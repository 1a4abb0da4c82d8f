#!/usr/bin/env bash
# Sends against a relay D ms away: bench/send's sink with --delay-ms D (each reply
# written D ms after the command arrived), for newsdesk binaries and the pipelining
# client (bench/send/src/bin/blast.rs, one round trip per message).
#
#   bash bench/send/latency.sh [--subscribers 1000] [--connections 4] [--delays "0 5 20"] [BINARY...]
#
# Prints CSV: tool, delay_ms, connections, messages, wall seconds, messages/s.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=1000; conns=4; delays="0 5 20"; bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --subscribers) n="$2"; shift 2 ;;
    --connections) conns="$2"; shift 2 ;;
    --delays) delays="$2"; shift 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
if [ "${#bins[@]}" -eq 0 ]; then
  (cd "$root" && cargo build --release --quiet)
  bins=("$root/target/release/newsdesk")
fi
cargo build --release --quiet --locked --manifest-path "$root/bench/send/Cargo.toml" --target-dir "$root/target/bench-send"
bin="$root/target/bench-send/release"
work=$(mktemp -d /tmp/newsdesk-latency.XXXXXX)
sink_pid=""
cleanup() { [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
. "$root/bench/send/sink.sh"
cp -r "$root/posts" "$root/email-templates" "$work/"
awk -v n="$n" 'BEGIN { print "email,name"; for (i = 0; i < n; i++) printf "s%06d@example.org,Subscriber %d\n", i, i }' > "$work/list.csv"
echo "tool,delay_ms,connections,messages,wall_s,per_second"
for d in $delays; do
  start_sink "$work" --delay-ms "$d"
  awk '/^\[smtp\]/ { exit } { print }' "$root/config.toml" > "$work/config.toml"
  cat >> "$work/config.toml" <<TOML
[smtp]
host = "127.0.0.1"
port = $port
security = "none"
connections = $conns

[subscribers]
database = "$work/db/newsdesk.db"
unsubscribe_url = "https://lwkd.example.org/unsubscribe/{token}"
TOML
  "${bins[0]}" -c "$work/config.toml" preview --out "$work/preview" > /dev/null 2>&1
  line=$("$bin/blast" --port "$port" --eml "$work/preview/message.eml" --messages "$n" --connections "$conns")
  secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$line")
  echo "pipelining-client,$d,$conns,$n,$secs,$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')"
  for b in "${bins[@]}"; do
    rm -rf "$work/db"
    "$b" -c "$work/config.toml" subscribers import "$work/list.csv" > /dev/null 2>&1
    start=$(date +%s.%N)
    "$b" -c "$work/config.toml" send --subscribers --yes > /dev/null 2> "$work/send.err" || { cat "$work/send.err" >&2; exit 1; }
    wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    echo "$b,$d,$conns,$n,$wall,$(awk -v n="$n" -v w="$wall" 'BEGIN { printf "%.1f", n / w }')"
  done
  kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; sink_pid=""
done
