#!/usr/bin/env bash
# Sends against a relay D ms away: bench/send's sink with --delay-ms D (each reply
# written D ms after the command arrived), for newsdesk binaries and the pipelining
# client (bench/send/src/bin/blast.rs, one round trip per message), same sink, same
# message, same run.
#
#   bash bench/send/latency.sh [--subscribers "1000"] [--connections "4"] [--delays "0 5 20"]
#                              [--dkim "none rsa"] [BINARY...]
#
# Each of --subscribers, --connections, --delays and --dkim takes a space-separated list;
# every combination is run. Prints CSV: tool, dkim, delay_ms, connections, messages,
# wall seconds, messages/s, CPU ms per message (user + sys), peak memory (KB).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sizes=1000; conn_list=4; delays="0 5 20"; keys=none; bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --subscribers) sizes="$2"; shift 2 ;;
    --connections) conn_list="$2"; shift 2 ;;
    --delays) delays="$2"; shift 2 ;;
    --dkim) keys="$2"; shift 2 ;;
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
openssl genrsa -traditional -out "$work/rsa.pem" 2048 2>/dev/null || openssl genrsa -out "$work/rsa.pem" 2048 2>/dev/null
cpu_ms() { awk -v u="$1" -v s="$2" -v n="$3" 'BEGIN { printf "%.3f", (u + s) * 1000 / n }'; }
echo "tool,dkim,delay_ms,connections,messages,wall_s,per_second,cpu_ms_per_message,max_rss_kb"
for d in $delays; do
  start_sink "$work" --delay-ms "$d"
  for key in $keys; do
    for conns in $conn_list; do
      awk '/^\[smtp\]/ { exit } { print }' "$root/config.toml" > "$work/config.toml"
      if [ "$key" != none ]; then
        printf '\n[email.dkim]\ndomain = "example.org"\nselector = "s1"\nkey_file = "%s"\n' "$work/$key.pem" >> "$work/config.toml"
      fi
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
      for n in $sizes; do
        awk -v n="$n" 'BEGIN { print "email,name"; for (i = 0; i < n; i++) printf "s%06d@example.org,Subscriber %d\n", i, i }' > "$work/list.csv"
        /usr/bin/time -f "%U %S %e %M" -o "$work/time.txt" \
          "$bin/blast" --port "$port" --eml "$work/preview/message.eml" --messages "$n" --connections "$conns" > "$work/blast.out"
        read -r user sys wall rss < "$work/time.txt"
        secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$work/blast.out")
        echo "pipelining-client,$key,$d,$conns,$n,$secs,$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.1f", n / s }'),$(cpu_ms "$user" "$sys" "$n"),$rss"
        for b in "${bins[@]}"; do
          rm -rf "$work/db"
          "$b" -c "$work/config.toml" subscribers import "$work/list.csv" > /dev/null 2>&1
          /usr/bin/time -f "%U %S %e %M" -o "$work/time.txt" \
            "$b" -c "$work/config.toml" send --subscribers --yes > /dev/null 2> "$work/send.err" || { cat "$work/send.err" >&2; exit 1; }
          read -r user sys wall rss < "$work/time.txt"
          echo "$b,$key,$d,$conns,$n,$wall,$(awk -v n="$n" -v w="$wall" 'BEGIN { printf "%.1f", n / w }'),$(cpu_ms "$user" "$sys" "$n"),$rss"
        done
      done
    done
  done
  kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; sink_pid=""
done
