#!/usr/bin/env python3
"""Plot median wall time against archive size (log-log), one line per tool.

    python3 bench/plot.py [bench/results/compare.csv] [bench/results]

Writes time_vs_size.svg and time_vs_size.png into the output folder.
Needs matplotlib (apt-get install python3-matplotlib, or pip install matplotlib).
"""

from __future__ import annotations

import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {
    "newsdesk": ("#d62728", "o"),
    "hugo": ("#1f77b4", "s"),
    "jekyll": ("#2ca02c", "^"),
}


def main() -> int:
    here = Path(__file__).resolve().parent
    csv_path = Path(sys.argv[1]) if len(sys.argv) > 1 else here / "results" / "compare.csv"
    out_dir = Path(sys.argv[2]) if len(sys.argv) > 2 else csv_path.parent

    walls: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            walls[row["tool"]][int(row["size"])].append(float(row["wall_s"]))
    if not walls:
        print(f"plot.py: no rows in {csv_path}", file=sys.stderr)
        return 1

    # Deterministic SVG output (no random ids, no date).
    plt.rcParams["svg.hashsalt"] = "newsdesk-bench"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    all_sizes: set[int] = set()
    for tool in sorted(walls, key=lambda t: list(STYLE).index(t) if t in STYLE else 99):
        sizes = sorted(walls[tool])
        all_sizes.update(sizes)
        # /usr/bin/time resolves 10 ms; keep zero medians plottable on a log axis
        meds = [max(statistics.median(walls[tool][s]), 0.005) for s in sizes]
        color, marker = STYLE.get(tool, (None, "x"))
        ax.plot(sizes, meds, marker=marker, color=color, label=tool, linewidth=1.8)
        for s, m in zip(sizes, meds):
            ax.annotate(f"{m:.3g}s" if m < 100 else f"{m:.0f}s", (s, m),
                        textcoords="offset points", xytext=(4, 4), fontsize=7, color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sorted(all_sizes))
    ax.set_xticklabels([f"{s:,}" for s in sorted(all_sizes)])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("posts in archive")
    ax.set_ylabel("median wall time (s, cold build)")
    ax.set_title("Feed build time vs archive size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "time_vs_size.svg", metadata={"Date": None})
    fig.savefig(out_dir / "time_vs_size.png", dpi=120, metadata={"Software": None})
    print(f"plot.py: wrote {out_dir / 'time_vs_size.svg'} and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
