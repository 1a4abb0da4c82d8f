# Sourced by the benchmark scripts: starts bench/send's SMTP sink.
#
#   start_sink WORK_DIR [SINK ARGS...]   # sets sink_pid and port
#
# The sink binary must be built (target/bench-send/release/sink); its output goes to
# WORK_DIR/sink.out. The caller's EXIT trap kills "$sink_pid".
start_sink() {
  local work="$1"; shift
  "$root/target/bench-send/release/sink" "$@" > "$work/sink.out" 2>&1 &
  sink_pid=$!
  for _ in $(seq 50); do grep -q listening "$work/sink.out" 2>/dev/null && break; sleep 0.1; done
  port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/sink.out")
  [ -n "$port" ] || { echo "the sink did not start: $(cat "$work/sink.out")" >&2; exit 1; }
}
