#!/usr/bin/env bash
# Reproduce the newsdesk vs Hugo vs Jekyll comparison on synthetic archives.
#
#   bash bench/compare.sh [--sizes "1000 10000 100000"] [--runs 5] [--max-jekyll 10000]
#                         [--max-hugo 100000] [--timeout 900] [--seed 1] [--tools "newsdesk hugo jekyll"]
#                         [--warmup 1] [--warmup-max 30] [--no-install] [--no-build]
#                         [--allow-missing-newsdesk]
#
# For every size: generate the archive (bench/gen_corpus.py; reused while the
# generator, size, seed and source are unchanged) and read it into the page cache;
# then for every tool one warm-up run and R measured cold runs (output folder and
# tool caches deleted before each run). The warm-up is left out when the tool's
# median at the previous size, scaled by size, predicts more than --warmup-max
# seconds (its binary and libraries are warm already; saves ~2 min of Jekyll).
# Each run is measured by bench/measure.py: wall time, CPU time (user+sys) and
# peak RSS (via /usr/bin/time) of that one run. Every run's output is checked by
# bench/check_feed.py (exactly 20 items, the 20 newest posts); a bad Hugo/Jekyll
# output aborts, a missing or broken newsdesk is reported and skipped (exit 2).
# Results: bench/results/compare.csv, compare.md, time_vs_size.svg/.png.
set -euo pipefail

SIZES="1000 10000 100000"
RUNS=5
WARMUP=1
WARMUP_MAX=30
MAX_JEKYLL=10000
MAX_HUGO=100000
TIMEOUT=900
SEED=1
TOOLS="newsdesk hugo jekyll"
INSTALL=1
BUILD=1
ALLOW_MISSING_NEWSDESK=0

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }
die() { echo "compare.sh: ERROR: $*" >&2; exit 1; }
log() { echo "compare.sh: $*" >&2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --sizes) SIZES="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --warmup-max) WARMUP_MAX="$2"; shift 2 ;;
    --max-jekyll) MAX_JEKYLL="$2"; shift 2 ;;
    --max-hugo) MAX_HUGO="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --tools) TOOLS="$2"; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --no-build) BUILD=0; shift ;;
    --allow-missing-newsdesk) ALLOW_MISSING_NEWSDESK=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
for v in RUNS WARMUP WARMUP_MAX MAX_JEKYLL MAX_HUGO TIMEOUT SEED; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "--${v,,} must be a non-negative integer (got '${!v}')"
done
[[ "$RUNS" -ge 1 ]] || die "--runs must be >= 1"
for n in $SIZES; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "bad size '$n'"; done
for t in $TOOLS; do [[ "$t" =~ ^(newsdesk|hugo|jekyll)$ ]] || die "unknown tool '$t'"; done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$REPO/bench"
CORPUS_ROOT="$REPO/target/bench-corpus"
OUT_ROOT="$REPO/target/bench-out"
RESULTS="$BENCH/results"
NEWSDESK="${NEWSDESK_BIN:-$REPO/target/release/newsdesk}"   # NEWSDESK_BIN: measure another build
TIME=/usr/bin/time
mkdir -p "$CORPUS_ROOT" "$OUT_ROOT" "$RESULTS"
cd "$REPO"

# ---------------------------------------------------------------- installs
have() { command -v "$1" >/dev/null 2>&1; }
has_feed_gem() { have ruby && ruby -e 'require "jekyll-feed"' >/dev/null 2>&1; }
pick_plot_python() {
  local py
  for py in python3 /usr/bin/python3; do
    if have "$py" && "$py" -c 'import matplotlib' >/dev/null 2>&1; then echo "$py"; return 0; fi
  done
  return 1
}

want_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

if [[ "$INSTALL" == 1 ]]; then
  pkgs=()
  [[ -x "$TIME" ]] || pkgs+=(time)
  if want_tool hugo && ! have hugo; then pkgs+=(hugo); fi
  if want_tool jekyll && ! have jekyll; then pkgs+=(jekyll); fi
  if want_tool jekyll && ! has_feed_gem; then pkgs+=(ruby-jekyll-feed); fi
  pick_plot_python >/dev/null || pkgs+=(python3-matplotlib)
  if [[ ${#pkgs[@]} -gt 0 ]]; then
    SUDO=()
    [[ "$(id -u)" == 0 ]] || SUDO=(sudo)
    have apt-get || die "missing ${pkgs[*]} and no apt-get; install them by hand"
    log "installing: ${pkgs[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
fi
[[ -x "$TIME" ]] || die "$TIME (GNU time) is required: apt-get install time"
if want_tool hugo && ! have hugo; then die "hugo not found (apt-get install hugo)"; fi
if want_tool jekyll && ! have jekyll; then die "jekyll not found (apt-get install jekyll)"; fi
if want_tool jekyll && ! has_feed_gem; then die "jekyll-feed not found (apt-get install ruby-jekyll-feed)"; fi
have python3 || die "python3 is required"

# ---------------------------------------------------------------- newsdesk build
NEWSDESK_STATUS=ok   # ok | <reason it is skipped>
if want_tool newsdesk; then
  if [[ "$BUILD" == 1 ]]; then
    if ! have cargo; then
      NEWSDESK_STATUS="cargo not found"
    elif ! cargo build --release --quiet; then
      NEWSDESK_STATUS="cargo build --release failed"
    fi
  fi
  if [[ "$NEWSDESK_STATUS" == ok && ! -x "$NEWSDESK" ]]; then
    NEWSDESK_STATUS="$NEWSDESK not found"
  fi
  if [[ "$NEWSDESK_STATUS" != ok ]]; then
    log "WARNING: newsdesk skipped: $NEWSDESK_STATUS"
  fi
fi

# ---------------------------------------------------------------- machine info
MACHINE="$OUT_ROOT/machine.txt"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "os: $(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null), kernel $(uname -r)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') ($(nproc) cores available to this process)"
  echo "memory: $(free -h | awk '/^Mem:/{print $2 " total, " $7 " available"}')"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "newsdesk: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'no commit'), $(rustc --version 2>/dev/null || echo 'rustc ?')"
  if have hugo; then echo "hugo: $(hugo version 2>/dev/null | head -1)"; fi
  if have jekyll; then
    echo "jekyll: $(jekyll --version 2>/dev/null), jekyll-feed $(dpkg-query -W -f='${Version}' ruby-jekyll-feed 2>/dev/null || gem list -q jekyll-feed 2>/dev/null | head -1), $(ruby --version 2>/dev/null)"
  fi
} > "$MACHINE"
echo "--- free -h" >> "$MACHINE"; free -h >> "$MACHINE"
cat "$MACHINE" >&2
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
  log "WARNING: the machine is busy (load $(cut -d' ' -f1 /proc/loadavg)); timings will be noisy"
fi

# ---------------------------------------------------------------- corpora
gen_stamp() {  # inputs that determine a corpus: generator, source listing, size, seed
  local n="$1"
  {
    sha256sum "$BENCH/gen_corpus.py"
    echo "posts=$n seed=$SEED"
    find "$REPO/../shared/corpus/lwkd/_posts" -type f -printf '%P %s %T@\n' 2>/dev/null | LC_ALL=C sort
  } | sha256sum | cut -d' ' -f1
}
ensure_corpus() {
  local n="$1" dir="$CORPUS_ROOT/$1" stamp
  stamp="$(gen_stamp "$n")"
  if [[ -f "$dir/.bench-stamp" && "$(cat "$dir/.bench-stamp")" == "$stamp" ]]; then
    log "corpus $n: up to date ($dir)"
  else
    rm -f "$dir/.bench-stamp"
    python3 "$BENCH/gen_corpus.py" --posts "$n" --seed "$SEED" --out "$dir" >&2
    echo "$stamp" > "$dir/.bench-stamp"
  fi
}

# ---------------------------------------------------------------- runs
CSV_TMP="$OUT_ROOT/compare.csv.tmp"
STATUS="$OUT_ROOT/status.csv"      # tool,size,status  (ok | skipped: reason | failed: reason)
echo "tool,size,run,wall_s,cpu_s,peak_kib" > "$CSV_TMP"
echo "tool,size,status" > "$STATUS"
HUGO_CACHE="$OUT_ROOT/hugo-cache"

# Clear everything a tool may reuse between runs, so each run is a cold build.
prepare() {
  local tool="$1" dir="$2" out="$3"
  rm -rf "$out"
  case "$tool" in
    hugo) rm -rf "$dir/resources" "$HUGO_CACHE" "$dir/.hugo_build.lock" ;;
    jekyll) rm -rf "$dir/.jekyll-cache" "$dir/.sass-cache" ;;
  esac
}

# run_once TOOL DIR OUT LOG -> prints "wall_s cpu_s peak_kib"; returns the tool's exit code (124: timeout)
run_once() {
  local tool="$1" dir="$2" out="$3" logf="$4"
  local -a cmd
  case "$tool" in
    newsdesk) cmd=("$NEWSDESK" -c "$dir/newsdesk.toml" build --out "$out") ;;
    hugo) cmd=(hugo --source "$dir" --destination "$out" --cacheDir "$HUGO_CACHE" --quiet) ;;
    jekyll) cmd=(env JEKYLL_ENV=production jekyll build --source "$dir" --destination "$out" --quiet) ;;
  esac
  prepare "$tool" "$dir" "$out"
  # measure.py runs the command under /usr/bin/time -f %M (peak RSS) and times it
  # itself with microsecond resolution (/usr/bin/time's %e %U %S only have 10 ms)
  python3 "$BENCH/measure.py" --timeout "$TIMEOUT" --log "$logf" -- "${cmd[@]}"
}

declare -A DROPPED=()   # tool -> reason it is not run at larger sizes
declare -A LAST_MED=() LAST_N=()   # tool -> median wall / size of its last measured size
WARM_SKIPPED=()
median_wall() {
  grep "^$1,$2," "$CSV_TMP" | cut -d, -f4 | sort -g |
    awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
NEWSDESK_FAILED=0

for n in $SIZES; do
  ensure_corpus "$n"
  dir="$CORPUS_ROOT/$n"
  find "$dir/_posts" -type f -exec cat {} + > /dev/null   # same page-cache state for every tool
  for tool in $TOOLS; do
    # ---- decide whether this tool runs at this size
    reason=""
    if [[ "$tool" == newsdesk && "$NEWSDESK_STATUS" != ok ]]; then reason="$NEWSDESK_STATUS"
    elif [[ -n "${DROPPED[$tool]:-}" ]]; then reason="${DROPPED[$tool]}"
    elif [[ "$tool" == jekyll && "$n" -gt "$MAX_JEKYLL" ]]; then reason="above --max-jekyll $MAX_JEKYLL"
    elif [[ "$tool" == hugo && "$n" -gt "$MAX_HUGO" ]]; then reason="above --max-hugo $MAX_HUGO"
    fi
    if [[ -n "$reason" ]]; then
      log "$tool @ $n: skipped ($reason)"
      echo "$tool,$n,skipped: ${reason//,/;}" >> "$STATUS"
      continue
    fi
    out="$OUT_ROOT/$tool-$n"
    logf="$OUT_ROOT/$tool-$n.log"
    status=ok
    warm="$WARMUP"
    if [[ "$warm" -gt 0 && -n "${LAST_MED[$tool]:-}" ]]; then
      est="$(awk -v m="${LAST_MED[$tool]}" -v a="${LAST_N[$tool]}" -v b="$n" 'BEGIN{printf "%.0f", m * b / a}')"
      if [[ "$est" -gt "$WARMUP_MAX" ]]; then
        log "$tool @ $n: no warm-up run (about ${est}s expected from the size ${LAST_N[$tool]} runs, over --warmup-max $WARMUP_MAX)"
        warm=0
        WARM_SKIPPED+=("$tool@$n")
      fi
    fi
    for ((r = 1 - warm; r <= RUNS; r++)); do
      rc=0
      m="$(run_once "$tool" "$dir" "$out" "$logf")" || rc=$?
      label="run $r/$RUNS"
      if [[ "$r" -le 0 ]]; then label="warm-up"; fi
      if [[ "$rc" == 124 ]]; then
        status="skipped: over --timeout ${TIMEOUT}s"
        DROPPED[$tool]="previous size over --timeout ${TIMEOUT}s"
      elif [[ "$rc" != 0 ]]; then
        status="failed: exit code $rc (log: ${logf#"$REPO/"})"
      elif ! python3 "$BENCH/check_feed.py" "$tool" "$out" "$dir" > "$OUT_ROOT/check.txt" 2>&1; then
        status="failed: bad feed output ($(grep -m1 FAIL "$OUT_ROOT/check.txt" | sed 's/^check_feed: FAIL: //'))"
      fi
      if [[ "$status" != ok ]]; then
        log "$tool @ $n $label: $status"
        if [[ "$rc" != 0 && "$rc" != 124 ]]; then tail -n 20 "$logf" >&2; fi
        cat "$OUT_ROOT/check.txt" >&2 2>/dev/null || true
        break
      fi
      read -r wall cpu peak <<< "$m"
      log "$tool @ $n $label: wall ${wall}s cpu ${cpu}s peak ${peak} KiB"
      if [[ "$r" -ge 1 ]]; then echo "$tool,$n,$r,$wall,$cpu,$peak" >> "$CSV_TMP"; fi
      if [[ "$r" -le 1 && -s "$OUT_ROOT/check.txt" ]]; then sed 's/^/  /' "$OUT_ROOT/check.txt" >&2; fi
    done
    rm -f "$OUT_ROOT/check.txt"
    if [[ "$status" == failed:* ]]; then
      if [[ "$tool" == newsdesk ]]; then
        # a broken newsdesk is reported, not fatal: Hugo/Jekyll numbers stay useful
        NEWSDESK_FAILED=1
        DROPPED[newsdesk]="failed at a smaller size"
        # drop its partial runs at this size from the CSV
        grep -v "^newsdesk,$n," "$CSV_TMP" > "$CSV_TMP.2" || true
        mv "$CSV_TMP.2" "$CSV_TMP"
      else
        die "$tool @ $n: $status — a benchmark of a tool that produced no valid feed is worthless"
      fi
    elif [[ "$status" == skipped:* ]]; then
      grep -v "^$tool,$n," "$CSV_TMP" > "$CSV_TMP.2" || true
      mv "$CSV_TMP.2" "$CSV_TMP"
    fi
    status="${status//"$REPO/"/}"
    echo "$tool,$n,${status//,/;}" >> "$STATUS"
    if [[ "$status" == ok ]]; then
      LAST_MED[$tool]="$(median_wall "$tool" "$n")"
      LAST_N[$tool]="$n"
    fi
    rm -rf "$out"   # keep the disk tidy; the log stays
  done
done

mv "$CSV_TMP" "$RESULTS/compare.csv"
sed -i "/^load average at start:/a load average at end: $(cut -d' ' -f1-3 /proc/loadavg) (includes the benchmark's own last runs)" "$MACHINE"
python3 "$BENCH/summarize.py" "$RESULTS/compare.csv" "$STATUS" "$MACHINE" "$RESULTS/compare.md" \
  "--runs=$RUNS" "--warmup=$WARMUP" "--no-warmup=${WARM_SKIPPED[*]:-}"
if PLOT_PY="$(pick_plot_python)"; then
  MPLBACKEND=Agg "$PLOT_PY" "$BENCH/plot.py" "$RESULTS/compare.csv" "$RESULTS"
else
  log "WARNING: matplotlib not available; no plot (apt-get install python3-matplotlib)"
fi
log "results: ${RESULTS#"$REPO/"}/compare.csv, compare.md, time_vs_size.svg"
cat "$RESULTS/compare.md"

if want_tool newsdesk && [[ "$NEWSDESK_STATUS" != ok || "$NEWSDESK_FAILED" == 1 ]]; then
  log "WARNING: newsdesk was not (fully) measured; see compare.md"
  [[ "$ALLOW_MISSING_NEWSDESK" == 1 ]] || exit 2
fi
