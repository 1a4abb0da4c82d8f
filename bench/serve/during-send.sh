#!/usr/bin/env bash
# `newsdesk serve` while a subscriber send runs on the same database, and the send's
# own speed with and without that load.
#
#   bash bench/serve/during-send.sh [--subscribers 150000] [--seconds 5] [--connections 32]
#
# Builds the release binary (or uses $NEWSDESK) and the SMTP sink of bench/send, imports
# N subscribers into two fresh databases on disk, then:
#   1. `send --subscribers --yes` alone on the first (to the sink, [smtp] connections = 4);
#   2. on the second, `serve` on 127.0.0.1 and the same send in the background; once the
#      send is under way, wrk (2 threads) posts one-clicks for --seconds (each request a
#      different subscriber's token, walking the list from its end, so most land on
#      subscribers the send has not reached: it must cancel them), then fetches
#      unsubscribe pages for --seconds.
# Prints wrk's reports, both sends' wall time, messages sent and cancelled, and checks
# that the send was still running when wrk finished. 127.0.0.1 only.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
subscribers=150000; seconds=5; connections=32
while [ $# -gt 0 ]; do
  case "$1" in
    --subscribers) subscribers="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    *) echo "during-send.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "${NEWSDESK:-}" ]; then
  (cd "$root" && cargo build --release --quiet)
  NEWSDESK="$root/target/release/newsdesk"
fi
cargo build --release --quiet --locked --manifest-path "$root/bench/send/Cargo.toml" --target-dir "$root/target/bench-send"
work=$(mktemp -d /tmp/newsdesk-serve-during.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

. "$root/bench/send/sink.sh"
start_sink "$work"
pids+=("$sink_pid")
smtp_port=$port

cp -r "$root/posts" "$root/email-templates" "$work/"
config() { # $1: database
  awk '/^\[smtp\]/ { exit } { print }' "$root/config.toml" > "$work/config-$2.toml"
  cat >> "$work/config-$2.toml" <<TOML
[smtp]
host = "127.0.0.1"
port = $smtp_port
security = "none"
timeout_secs = 30
connections = 4

[subscribers]
database = "$1"
unsubscribe_url = "https://lwkd.example.org/unsubscribe/{token}"
TOML
}
awk -v n="$subscribers" 'BEGIN { print "email,name"; for (i = 0; i < n; i++) printf "s%06d@example.org,Subscriber %d\n", i, i }' > "$work/list.csv"
for run in alone during; do
  config "$work/db-$run/newsdesk.db" "$run"
  "$NEWSDESK" -c "$work/config-$run.toml" subscribers import "$work/list.csv" > /dev/null 2>&1
done
python3 - "$work/db-during/newsdesk.db" "$work/tokens.txt" <<'PY'
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute("SELECT token FROM subscribers ORDER BY id DESC").fetchall()
open(sys.argv[2], "w").write("\n".join(r[0] for r in rows) + "\n")
PY
counts() { # $1: database -> "sent cancelled"
  python3 - "$1" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
get = lambda s: c.execute("SELECT COUNT(*) FROM deliveries WHERE state = ?", (s,)).fetchone()[0]
print(get("sent"), get("cancelled"))
PY
}

echo "== 1. the send alone: $subscribers subscribers"
start=$(date +%s.%N)
"$NEWSDESK" -c "$work/config-alone.toml" send --subscribers --yes > /dev/null 2> "$work/send-alone.err"
alone_wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
read -r alone_sent alone_cancelled < <(counts "$work/db-alone/newsdesk.db")
echo "send alone: ${alone_wall}s, $alone_sent sent, $alone_cancelled cancelled: $(awk -v n="$alone_sent" -v w="$alone_wall" 'BEGIN { printf "%.0f", n / w }') sent/s"

echo "== 2. serve and wrk while the same send runs"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$NEWSDESK" -c "$work/config-during.toml" serve --listen "127.0.0.1:$port" 2> "$work/serve.log" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
cat > "$work/post.lua" <<LUA
local tokens = {}
for line in io.lines("$work/tokens.txt") do tokens[#tokens + 1] = line end
local threads = 0
function setup(thread) thread:set("id", threads); threads = threads + 1 end
function init(args) i = id end
function request()
  local t = tokens[(i % #tokens) + 1]
  i = i + 2
  return wrk.format("POST", "/unsubscribe/" .. t,
    { ["Content-Type"] = "application/x-www-form-urlencoded" }, "List-Unsubscribe=One-Click")
end
LUA
cat > "$work/get.lua" <<LUA
local tokens = {}
for line in io.lines("$work/tokens.txt") do tokens[#tokens + 1] = line end
function request() return wrk.format("GET", "/unsubscribe/" .. tokens[math.random(#tokens)]) end
LUA
start=$(date +%s.%N)
"$NEWSDESK" -c "$work/config-during.toml" send --subscribers --yes > /dev/null 2> "$work/send-during.err" &
send_pid=$!
pids+=($send_pid)
sleep 0.5
echo "== one-click POSTs while the send runs: $connections connections, ${seconds}s"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/post.lua" "http://127.0.0.1:$port"
echo "== unsubscribe-page GETs while the send runs"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/get.lua" "http://127.0.0.1:$port"
if kill -0 "$send_pid" 2>/dev/null; then still="yes"; else still="NO (the figures above are partly without the send)"; fi
wait "$send_pid"
during_wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
read -r during_sent during_cancelled < <(counts "$work/db-during/newsdesk.db")
echo "send still running when wrk finished: $still"
echo "send during: ${during_wall}s, $during_sent sent, $during_cancelled cancelled: $(awk -v n="$during_sent" -v w="$during_wall" 'BEGIN { printf "%.0f", n / w }') sent/s, $(awk -v n="$during_sent" -v c="$during_cancelled" -v w="$during_wall" 'BEGIN { printf "%.0f", (n + c) / w }') rows/s"
echo "send alone:  ${alone_wall}s, $alone_sent sent: $(awk -v n="$alone_sent" -v w="$alone_wall" 'BEGIN { printf "%.0f", n / w }') sent/s"
python3 - "$work/db-during/newsdesk.db" <<'PY'
import sqlite3, sys
n = sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM subscribers WHERE status = 'unsubscribed'").fetchone()[0]
print(f"unsubscribed in the database afterwards: {n}")
PY
