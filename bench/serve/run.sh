#!/usr/bin/env bash
# `newsdesk serve` under load: wrk against one-click unsubscribe POSTs (each request a
# distinct subscriber's token) and unsubscribe-page GETs.
#
#   bash bench/serve/run.sh [--subscribers 100000] [--seconds 10] [--connections 32]
#
# Builds the release binary (or uses $NEWSDESK), imports N subscribers into a fresh
# database on disk, starts `serve` on 127.0.0.1, and runs wrk (2 threads) for each kind
# of request. Prints wrk's report (requests/s, latency percentiles, errors) and checks
# afterwards that every subscriber whose POST was answered is unsubscribed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
subscribers=100000; seconds=10; connections=32
while [ $# -gt 0 ]; do
  case "$1" in
    --subscribers) subscribers="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "${NEWSDESK:-}" ]; then
  (cd "$root" && cargo build --release --quiet)
  NEWSDESK="$root/target/release/newsdesk"
fi
work=$(mktemp -d /tmp/newsdesk-serve-bench.XXXXXX)
serve_pid=""
cleanup() { [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cp -r "$root/posts" "$root/email-templates" "$work/"
awk '/^\[smtp\]/ { exit } { print }' "$root/config.toml" > "$work/config.toml"
cat >> "$work/config.toml" <<TOML
[subscribers]
database = "$work/db/newsdesk.db"
unsubscribe_url = "https://lwkd.example.org/unsubscribe/{token}"
TOML
awk -v n="$subscribers" 'BEGIN { print "email"; for (i = 0; i < n; i++) printf "s%06d@example.org\n", i }' > "$work/list.csv"
"$NEWSDESK" -c "$work/config.toml" subscribers import "$work/list.csv" > /dev/null 2>&1
python3 - "$work/db/newsdesk.db" "$work/tokens.txt" <<'PY'
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute("SELECT token FROM subscribers ORDER BY id").fetchall()
open(sys.argv[2], "w").write("\n".join(r[0] for r in rows) + "\n")
PY
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$NEWSDESK" -c "$work/config.toml" serve --listen "127.0.0.1:$port" 2> "$work/serve.log" &
serve_pid=$!
for _ in $(seq 100); do grep -q listening "$work/serve.log" 2>/dev/null && break; sleep 0.1; done

# Each wrk thread walks its own half of the token list, one token per request.
cat > "$work/post.lua" <<LUA
local tokens = {}
for line in io.lines("$work/tokens.txt") do tokens[#tokens + 1] = line end
local threads = 0
function setup(thread) thread:set("id", threads); threads = threads + 1 end
function init(args) i = id * math.floor(#tokens / 2) end
function request()
  i = i + 1
  local t = tokens[(i % #tokens) + 1]
  return wrk.format("POST", "/unsubscribe/" .. t,
    { ["Content-Type"] = "application/x-www-form-urlencoded" }, "List-Unsubscribe=One-Click")
end
LUA
cat > "$work/get.lua" <<LUA
local tokens = {}
for line in io.lines("$work/tokens.txt") do tokens[#tokens + 1] = line end
function request() return wrk.format("GET", "/unsubscribe/" .. tokens[math.random(#tokens)]) end
LUA
echo "== one-click POSTs: $subscribers subscribers, $connections connections, ${seconds}s"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/post.lua" "http://127.0.0.1:$port"
echo "== unsubscribe-page GETs"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/get.lua" "http://127.0.0.1:$port"
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=""
python3 - "$work/db/newsdesk.db" <<'PY'
import sqlite3, sys
n = sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM subscribers WHERE status = 'unsubscribed'").fetchone()[0]
print(f"unsubscribed in the database afterwards: {n}")
PY
