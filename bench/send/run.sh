#!/usr/bin/env bash
# Send throughput: `newsdesk send --subscribers` against a local SMTP sink, next to a
# plain pipelining client sending the same message to the same sink.
#
#   bash bench/send/run.sh [--subscribers "10000 100000"] [--connections "4"]
#                          [--client-connections "4 1"] [--tmpfs-db] [--perf]
#                          [--timeout 600] [--out bench/results]
#
# For each N in --subscribers:
#   1. the pipelining client (bench/send/src/bin/blast.rs) sends N copies of the issue
#      (as `newsdesk preview` renders it) to the sink, with each --client-connections;
#      then the same client without pipelining (`--lockstep`: one reply per command,
#      as newsdesk talks SMTP);
#   2. for each --connections C: a fresh database, `newsdesk subscribers import` of N
#      subscribers, then `newsdesk send --subscribers --yes` (release build, [smtp]
#      connections = C) under /usr/bin/time; the sink's own count confirms N arrived.
# --tmpfs-db repeats step 2 with the database on /dev/shm (no real fsync: the cost of
# the ledger's durable commits is the difference). --perf adds three runs (first N, first
# C, not in the table) under `perf stat`, `perf trace -s` (fsync latency) and
# `perf record --call-graph dwarf`, and keeps the reports in $out/send-perf.txt.
#
# Writes $out/send.csv and $out/send.md (and send-perf.txt with --perf). Everything
# listens on and talks to 127.0.0.1 only; every run is bounded by --timeout seconds.
# NEWSDESK=/path/to/newsdesk uses that binary instead of building target/release.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
subscribers="10000 100000"
connections="4"
client_connections="4 1"
tmpfs_db=0
perf=0
limit=600
out="$root/bench/results"
while [ $# -gt 0 ]; do
  case "$1" in
    --subscribers) subscribers="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --client-connections) client_connections="$2"; shift 2 ;;
    --tmpfs-db) tmpfs_db=1; shift ;;
    --perf) perf=1; shift ;;
    --timeout) limit="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

echo "== building (release)" >&2
if [ -z "${NEWSDESK:-}" ]; then
  (cd "$root" && cargo build --release --quiet)
  NEWSDESK="$root/target/release/newsdesk"
fi
cargo build --release --quiet --locked --manifest-path "$root/bench/send/Cargo.toml" --target-dir "$root/target/bench-send"
bin="$root/target/bench-send/release"

work=$(mktemp -d /tmp/newsdesk-send-bench.XXXXXX)
sink_pid=""
cleanup() {
  if [ -n "$sink_pid" ]; then kill "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The sink.
"$bin/sink" --stats "$work/sink.stats" >"$work/sink.out" 2>"$work/sink.err" &
sink_pid=$!
for _ in $(seq 50); do grep -q listening "$work/sink.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/sink.out")
[ -n "$port" ] || { echo "the sink did not start: $(cat "$work/sink.err")" >&2; exit 1; }
echo "== sink on 127.0.0.1:$port (pid $sink_pid)" >&2
sink_cpu() { awk '{ print $14 + $15 }' "/proc/$sink_pid/stat"; }
sink_messages() { sleep 0.3; sed -n 's/^messages=\([0-9]*\) .*/\1/p' "$work/sink.stats" 2>/dev/null || echo 0; }

# The site: the repository's posts, templates and [site]/[feeds]/[email], sending to the sink.
site="$work/site"
mkdir -p "$site"
cp -r "$root/posts" "$root/email-templates" "$site/"
write_config() { # $1 connections, $2 database path
  awk '/^\[smtp\]/ { exit } { print }' "$root/config.toml" >"$site/config.toml"
  cat >>"$site/config.toml" <<EOF
[smtp]
host = "127.0.0.1"
port = $port
security = "none"
timeout_secs = 30
connections = $1

[subscribers]
database = "$2"
unsubscribe_url = "https://lwkd.example.org/unsubscribe/{token}"
EOF
}
write_config 4 "$work/db/newsdesk.db"
"$NEWSDESK" -c "$site/config.toml" preview --out "$work/preview" >/dev/null 2>&1
eml="$work/preview/message.eml"
eml_bytes=$(wc -c <"$eml")

csv="$out/send.csv"
echo "tool,subscribers,connections,database,messages,seconds,per_second,wall_seconds,wall_per_second,max_rss_kb,user_seconds,sys_seconds,sink_messages,import_seconds,import_max_rss_kb,sink_cpu_seconds" >"$csv"

for n in $subscribers; do
  awk -v n="$n" 'BEGIN { print "email,name"; for (i = 0; i < n; i++) printf "s%06d@example.org,Subscriber %d\n", i, i }' >"$work/list.csv"

  for mode in pipelining lockstep; do
    for c in $client_connections; do
      before=$(sink_messages)
      flag=""
      [ "$mode" = lockstep ] && flag="--lockstep"
      line=$(timeout "$limit" /usr/bin/time -f "wall=%e rss=%M user=%U sys=%S" -o "$work/time.txt" \
        "$bin/blast" --port "$port" --eml "$eml" --messages "$n" --connections "$c" $flag)
      after=$(sink_messages)
      secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$line")
      rate=$(sed -n 's/.*per_second=\([0-9.]*\).*/\1/p' <<<"$line")
      read -r wall rss user sys < <(grep '^wall=' "$work/time.txt" | sed 's/[a-z]*=//g')
      echo "$mode-client,$n,$c,-,$n,$secs,$rate,$wall,$(awk -v n="$n" -v w="$wall" 'BEGIN { printf "%.1f", n / w }'),$rss,$user,$sys,$((after - before)),,," >>"$csv"
      echo "   $mode client N=$n C=$c: $rate msg/s ($secs s), sink got $((after - before))" >&2
    done
  done

  dbdirs="$work/db"
  [ "$tmpfs_db" = 1 ] && dbdirs="$dbdirs /dev/shm/newsdesk-send-bench-$$"
  for dbdir in $dbdirs; do
    for c in $connections; do
      rm -rf "$dbdir"
      mkdir -p "$dbdir"
      write_config "$c" "$dbdir/newsdesk.db"
      /usr/bin/time -f "%e %M" -o "$work/import.txt" "$NEWSDESK" -c "$site/config.toml" subscribers import "$work/list.csv" >/dev/null 2>"$work/import.err" \
        || { cat "$work/import.err" >&2; exit 1; }
      read -r import_s import_rss <"$work/import.txt"
      before=$(sink_messages)
      cmd=("$NEWSDESK" -c "$site/config.toml" send --subscribers --yes)
      status=0
      cpu_before=$(sink_cpu)
      timeout "$limit" /usr/bin/time -f "wall=%e rss=%M user=%U sys=%S" -o "$work/time.txt" "${cmd[@]}" >/dev/null 2>"$work/send.err" || status=$?
      sink_cpu_s=$(awk -v a="$cpu_before" -v b="$(sink_cpu)" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')
      after=$(sink_messages)
      if [ "$status" != 0 ]; then
        echo "newsdesk send failed or timed out after ${limit}s (status $status):" >&2
        tail -5 "$work/send.err" >&2
      fi
      summary=$(grep -m1 '^sent ' "$work/send.err" || true)
      # "sent N in Xs (Y messages/s); ..."
      sent=$(sed -n 's/^sent \([0-9]*\) in.*/\1/p' <<<"$summary")
      secs=$(sed -n 's/^sent [0-9]* in \([0-9.]*\)s.*/\1/p' <<<"$summary")
      rate=$(sed -n 's/.*(\([0-9.]*\) messages\/s).*/\1/p' <<<"$summary")
      read -r wall rss user sys < <(grep '^wall=' "$work/time.txt" | sed 's/[a-z]*=//g')
      where=disk
      [ "$dbdir" != "$work/db" ] && where=tmpfs
      echo "newsdesk,$n,$c,$where,${sent:-0},${secs:-},${rate:-},$wall,$(awk -v n="${sent:-0}" -v w="$wall" 'BEGIN { printf "%.1f", n / w }'),$rss,$user,$sys,$((after - before)),$import_s,$import_rss,$sink_cpu_s" >>"$csv"
      echo "   newsdesk N=$n C=$c db=$where: ${rate:-?} msg/s (${secs:-?} s in the run, $wall s wall), peak ${rss} KB, sink got $((after - before)) (sink CPU ${sink_cpu_s} s); import ${import_s} s" >&2
      rm -rf "$dbdir"
    done
  done
done

if [ "$perf" = 1 ]; then
  # Three extra runs (not in the table: profiling slows them down), first N and first C,
  # database on disk: syscall and scheduling counts, then a sampled CPU profile.
  n=${subscribers%% *}
  c=${connections%% *}
  awk -v n="$n" 'BEGIN { print "email,name"; for (i = 0; i < n; i++) printf "s%06d@example.org,Subscriber %d\n", i, i }' >"$work/list.csv"
  fresh() {
    rm -rf "$work/db"
    mkdir -p "$work/db"
    write_config "$c" "$work/db/newsdesk.db"
    "$NEWSDESK" -c "$site/config.toml" subscribers import "$work/list.csv" >/dev/null 2>&1
  }
  cmd=("$NEWSDESK" -c "$site/config.toml" send --subscribers --yes)
  echo "== perf stat and perf record of newsdesk send (N=$n, connections=$c)" >&2
  fresh
  events=task-clock,context-switches,cpu-migrations
  for sc in fsync fdatasync pwrite64 pread64 sendto recvfrom write futex; do events="$events,syscalls:sys_enter_$sc"; done
  timeout "$limit" perf stat -e "$events" -o "$work/perf-stat.txt" -- "${cmd[@]}" >/dev/null 2>"$work/perf-stat.err" || true
  fresh
  timeout "$limit" perf trace -s -e fsync,pwrite64 -o "$work/perf-trace.txt" -- "${cmd[@]}" >/dev/null 2>"$work/perf-trace.err" || true
  fresh
  timeout "$limit" perf record -F 999 --call-graph dwarf,8192 -o "$work/perf.data" -- "${cmd[@]}" >/dev/null 2>"$work/perf-record.err" || true
  {
    echo "# newsdesk send --subscribers under perf (N=$n, connections=$c, database on disk)"
    echo
    echo "## perf stat -e $events"
    echo
    grep -m1 '^sent ' "$work/perf-stat.err" || true
    grep -E '^ +[0-9]' "$work/perf-stat.txt" | sed 's/  */ /g'
    echo "(per message: divide by $n)"
    echo
    echo "## perf trace -s -e fsync,pwrite64 (latency in ms; tracing slows the run down)"
    echo
    grep -m1 '^sent ' "$work/perf-trace.err" || true
    grep -E '^ +(syscall|fsync|pwrite64) ' "$work/perf-trace.txt" | awk '$1 == "syscall" && !h { print; h = 1 } $1 != "syscall"' | sed 's/  */ /g'
    echo
    echo "## perf record -F 999 --call-graph dwarf: on-CPU samples by thread"
    echo
    perf report -i "$work/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep '%' | sed 's/  */ /g'
    echo
    echo "## inclusive (children) share of the main steps"
    echo
    perf report -i "$work/perf.data" --children --sort symbol --stdio -g none 2>/dev/null \
      | grep -E '\] (newsdesk::delivery::engine::work|newsdesk::email::digest::Digest::message_for|newsdesk::dkim::.*sign|newsdesk::delivery::smtp::send|newsdesk::delivery::writer::run|newsdesk::delivery::writer::Writer::commit|newsdesk::delivery::writer::Journal::record|newsdesk::delivery::ledger::next_page|sqlite3_step|__x64_sys_(sendto|recvfrom|futex|fsync|pwrite64|pread64)|schedule)( |$)' \
      | sed 's/  */ /g; s/ - - *$//'
    echo
    echo "## hottest functions (self)"
    echo
    perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio -g none --percent-limit 0.7 2>/dev/null | grep '%' | sed 's/  */ /g; s/ - - *$//' | cut -c1-160
  } >"$out/send-perf.txt"
  echo "== perf report in $out/send-perf.txt" >&2
fi

# send.md: the table, the machine, the commands.
md="$out/send.md"
{
  echo "# Send throughput"
  echo
  echo "Generated by \`bash bench/send/run.sh --subscribers \"$subscribers\" --connections \"$connections\" --client-connections \"$client_connections\"$([ "$tmpfs_db" = 1 ] && echo ' --tmpfs-db')$([ "$perf" = 1 ] && echo ' --perf')\` on $(date -u +%Y-%m-%d)."
  echo "Raw numbers: \`$(basename "$out")/send.csv\`$([ "$perf" = 1 ] && echo ", profile: \`$(basename "$out")/send-perf.txt\`")."
  echo
  echo "The message is the bundled newest issue as \`newsdesk preview\` renders it: $eml_bytes bytes"
  echo "(multipart/alternative, quoted-printable text and HTML parts). newsdesk renders each"
  echo "subscriber's copy itself (own To, Message-ID, unsubscribe links); the pipelining client"
  echo "sends the same pre-rendered bytes N times with a different RCPT TO: \`pipelining-client\` with"
  echo "PIPELINING (one round trip per message), \`lockstep-client\` waiting for each reply (MAIL, RCPT,"
  echo "DATA, body: four round trips per message, as newsdesk's SMTP code does)."
  echo
  echo "| tool | subscribers | connections | database | sent | messages/s (own) | messages/s (wall) | % of pipelining client (same N, 4 conn.) | % of lock-step client (same N and conn.) | peak RSS (MB) | user s | sys s | sink CPU s |"
  echo "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F, 'NR > 1 {
      if ($1 == "pipelining-client" && $3 == 4) ref[$2] = $7
      if ($1 == "lockstep-client") lock[$2 "," $3] = $7
      rows[NR] = $0
    }
    END {
      for (i = 2; i <= NR; i++) {
        split(rows[i], f, ",")
        pct = (f[2] in ref && ref[f[2]] > 0) ? sprintf("%.1f %%", 100 * f[7] / ref[f[2]]) : "";
        k = f[2] "," f[3]
        lpct = (k in lock && lock[k] > 0 && f[1] != "pipelining-client") ? sprintf("%.1f %%", 100 * f[7] / lock[k]) : "";
        printf "| %s | %d | %d | %s | %d | %.0f | %.0f | %s | %s | %.1f | %.2f | %.2f | %s |\n", f[1], f[2], f[3], f[4], f[5], f[7], f[9], pct, lpct, f[10] / 1024, f[11], f[12], f[16]
      }
    }' "$csv"
  echo
  echo "\"messages/s (own)\" is what the tool reports: newsdesk's summary line (\`sent N in Xs (R messages/s)\`,"
  echo "timed inside the send engine), the client's time from its first connection to its last reply."
  echo "\"wall\" divides by the whole process's wall time (\`/usr/bin/time\`): for newsdesk this includes"
  echo "loading the posts, rendering the digest, opening the database and freezing the ledger."
  echo "Peak RSS is \`/usr/bin/time -f %M\`. The sink counted every message (column \`sink_messages\` in the CSV)."
  echo
  echo "Import (\`newsdesk subscribers import\`, fresh database): $(awk -F, 'NR > 1 && $1 == "newsdesk" && $4 == "disk" { printf "%s%d subscribers %.2f s, %.1f MB peak", sep, $2, $14, $15 / 1024; sep = "; " }' "$csv")."
  echo
  echo "## Machine"
  echo
  echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores (nproc)"
  echo "- Memory: $(free -h | awk '/^Mem:/ { print $2 }')"
  echo "- Kernel: $(uname -sr); database on $(df -T "$work" | awk 'NR == 2 { print $2 }') ($(df "$work" | awk 'NR == 2 { print $1 }'))"
  echo "- $(rustc --version); newsdesk release build of the working tree at commit $(git -C "$root" describe --always --dirty --exclude '*')"
  echo "- Sink, client and newsdesk share the same cores; the sink uses one thread per connection."
  echo
  echo "## Commands"
  echo
  echo '```sh'
  echo "bash bench/send/run.sh --subscribers \"$subscribers\" --connections \"$connections\" --client-connections \"$client_connections\"$([ "$tmpfs_db" = 1 ] && echo ' --tmpfs-db')$([ "$perf" = 1 ] && echo ' --perf')"
  echo "# what it runs, per N:"
  echo "target/bench-send/release/sink --stats STATS                       # prints its 127.0.0.1 port"
  echo "newsdesk -c SITE/config.toml preview --out PREVIEW                  # the message the client sends"
  echo "target/bench-send/release/blast --port PORT --eml PREVIEW/message.eml --messages N --connections C [--lockstep]"
  echo "newsdesk -c SITE/config.toml subscribers import list.csv            # fresh database, N rows"
  echo "/usr/bin/time -f '%e %M %U %S' newsdesk -c SITE/config.toml send --subscribers --yes"
  echo '```'
  echo
  echo "SITE/config.toml is the repository's config.toml up to \`[smtp]\`, then:"
  echo
  echo '```toml'
  echo "[smtp]"
  echo "host = \"127.0.0.1\""
  echo "port = PORT"
  echo "security = \"none\""
  echo "timeout_secs = 30"
  echo "connections = C"
  echo
  echo "[subscribers]"
  echo "database = \"DB\""
  echo "unsubscribe_url = \"https://lwkd.example.org/unsubscribe/{token}\""
  echo '```'
} >"$md"
echo "== wrote $csv and $md" >&2
cat "$md"
