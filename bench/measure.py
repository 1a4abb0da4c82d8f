#!/usr/bin/env python3
"""Run one command and report wall time, CPU time (user+sys) and peak RSS of that one run.

    python3 bench/measure.py [--timeout S] [--log FILE] -- CMD [ARG...]

Prints "wall_s cpu_s peak_kib" on stdout and exits with the command's exit code
(124 if it was killed after --timeout seconds, 128+N if killed by signal N).

All three numbers come from the same run, like `/usr/bin/time -f '%e %U %S %M'`,
but wall and CPU time have microsecond instead of 10 ms resolution: newsdesk
builds a 1,000-post archive in about 10 ms, where /usr/bin/time prints 0.00 or
0.01. The command still runs under `/usr/bin/time -f %M`, which supplies the peak
RSS: a child forked straight from Python would inherit Python's ~14 MiB
high-water mark (ru_maxrss survives fork and exec), hiding a small tool's real
peak. Wall time is taken around the whole run and CPU time (user+sys) from
wait4(2) on /usr/bin/time, which includes the command's; both therefore include
about 1 ms of process start-up and /usr/bin/time itself.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

GNU_TIME = "/usr/bin/time"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=0, help="kill the command after S seconds (0: never)")
    ap.add_argument("--log", default=os.devnull, help="file for the command's stdout+stderr")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("no command given")

    if not os.access(GNU_TIME, os.X_OK):
        sys.exit(f"measure.py: {GNU_TIME} (GNU time) is required: apt-get install time")
    fd, peak_file = tempfile.mkstemp(prefix="measure-", suffix=".txt")
    os.close(fd)
    cmd = [GNU_TIME, "-f", "%M", "-o", peak_file, *cmd]

    timed_out = threading.Event()
    with open(args.log, "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        def on_signal(signum: int, _frame: object) -> None:
            # the command runs in its own session: take it down with us
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.unlink(peak_file)
            os._exit(128 + signum)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, on_signal)

        timer = threading.Timer(args.timeout, kill) if args.timeout > 0 else None
        if timer:
            timer.daemon = True
            timer.start()
        while True:
            try:
                _, status, ru = os.wait4(proc.pid, 0)
                break
            except InterruptedError:
                continue
        wall = time.perf_counter() - start
        if timer:
            timer.cancel()
        proc.returncode = 0  # reaped above; keep Popen from waiting again

    cpu = ru.ru_utime + ru.ru_stime
    try:
        with open(peak_file, encoding="utf-8") as f:
            lines = f.read().split()
        peak = int(lines[-1]) if lines and lines[-1].isdigit() else 0  # KiB
    finally:
        os.unlink(peak_file)
    print(f"{wall:.4f} {cpu:.4f} {peak}")
    if timed_out.is_set():
        return 124
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main())
