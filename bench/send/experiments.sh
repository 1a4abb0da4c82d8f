#!/usr/bin/env bash
# What each part of a subscriber send costs: `newsdesk send --subscribers` built from a
# scratch copy of the sources with bench/results/send-experiments.patch applied, which
# adds switches (environment variable EXP, comma-separated) that change one thing each:
#
#   cached    the ledger's UPDATEs use prepare_cached instead of re-preparing each time
#   coalesce  the ledger writer holds a group of posted-only ops (`sent`) up to 5 ms so
#             they share the next `sending` commit instead of committing alone
#   pipeline  MAIL FROM, RCPT TO and DATA go out in one write (RFC 2920), then the body
#   norender  every subscriber gets the same pre-formatted bytes (envelope and
#             Message-ID still per subscriber): the cost of per-recipient rendering
#   noledger  no ledger transitions and no journal at all (NOT a valid send: rows stay
#             pending and the run exits non-zero): the cost of the ledger
#
#   bash bench/send/experiments.sh [--subscribers 20000] [--connections 4] [--reps 3]
#                                  [--variants "base cached ..."] [--base COMMIT]
#
# Runs bench/send/run.sh for each variant, --reps times, interleaved (variant order
# repeated), and writes bench/results/send-experiments.csv and .md with the medians.
# The scratch copy lives in a temporary folder and builds into target/send-exp (or
# $EXP_TARGET_DIR); the shared tree's sources are not touched.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# The commit the patch was made against.
base=1233357
subscribers=20000
connections=4
reps=3
variants="base cached coalesce pipeline norender cached,coalesce,pipeline cached,coalesce,pipeline,norender noledger noledger,pipeline,norender"
while [ $# -gt 0 ]; do
  case "$1" in
    --subscribers) subscribers="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --variants) variants="$2"; shift 2 ;;
    --base) base="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "experiments.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

scratch=$(mktemp -d /tmp/newsdesk-send-exp.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
git -C "$root" archive "$base" | tar -x -C "$scratch"
(cd "$scratch" && patch -p1 --quiet <"$root/bench/results/send-experiments.patch")
echo "== building the patched newsdesk ($base + send-experiments.patch)" >&2
target=${EXP_TARGET_DIR:-$root/target/send-exp}
(cd "$scratch" && CARGO_TARGET_DIR="$target" cargo build --release --quiet)
bin="$target/release/newsdesk"

csv="$root/bench/results/send-experiments.csv"
echo "variant,rep,subscribers,connections,newsdesk_per_second,client_per_second" >"$csv"
for rep in $(seq "$reps"); do
  for v in $variants; do
    exp=$v
    [ "$v" = base ] && exp=""
    EXP=$exp NEWSDESK="$bin" bash "$root/bench/send/run.sh" --subscribers "$subscribers" \
      --connections "$connections" --client-connections "$connections" --out "$scratch/out" >"$scratch/log" 2>&1 || true
    rate=$(sed -n "s/^   newsdesk N=$subscribers C=$connections db=disk: \([0-9.]*\) msg.*/\1/p" "$scratch/log")
    client=$(sed -n "s/^   pipelining client N=$subscribers C=$connections: \([0-9.]*\) msg.*/\1/p" "$scratch/log")
    echo "\"$v\",$rep,$subscribers,$connections,${rate:-},${client:-}" >>"$csv"
    echo "   rep $rep $v: ${rate:-?} msg/s (pipelining client ${client:-?})" >&2
  done
done

python3 - "$csv" "$root/bench/results/send-experiments.md" "$subscribers" "$connections" "$reps" "$base" <<'EOF'
import csv, statistics, sys, collections
path, md, n, c, reps, base = sys.argv[1:]
rates, clients, order = collections.defaultdict(list), [], []
for r in csv.DictReader(open(path)):
    if r["variant"] not in order:
        order.append(r["variant"])
    if r["newsdesk_per_second"]:
        rates[r["variant"]].append(float(r["newsdesk_per_second"]))
    if r["client_per_second"]:
        clients.append(float(r["client_per_second"]))
b = statistics.median(rates["base"]) if rates["base"] else None
cl = statistics.median(clients) if clients else None
with open(md, "w") as f:
    f.write("# Send experiments: what each part of a subscriber send costs\n\n")
    f.write(f"`bash bench/send/experiments.sh --subscribers {n} --connections {c} --reps {reps}`: newsdesk at {base}\n")
    f.write("plus `bench/results/send-experiments.patch` (switches in `EXP`, see the script), database on disk,\n")
    f.write(f"{n} subscribers, {c} connections, the sink of `bench/send/run.sh`. Median of {reps} interleaved runs.\n")
    f.write("`noledger` is not a valid send (nothing is recorded); it only measures the ledger's cost.\n\n")
    f.write("| variant | messages/s (median) | runs | vs base | % of pipelining client |\n|---|---:|---|---:|---:|\n")
    for v in order:
        xs = rates[v]
        if not xs:
            f.write(f"| {v} | (failed) | | | |\n")
            continue
        m = statistics.median(xs)
        f.write(f"| {v} | {m:.0f} | {', '.join(f'{x:.0f}' for x in xs)} | {m / b:.2f}x | {100 * m / cl:.1f} % |\n")
    f.write(f"\nPipelining client, same runs: median {cl:.0f} messages/s ({c} connections).\n")
print(open(md).read())
EOF
