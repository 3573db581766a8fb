"""The growth table of "MPD scale" (bench/RESULTS.md): each stage's wall time and peak RSS from the
run logs of runs at several sizes, and the exponent of its growth between consecutive sizes
(log(t2 / t1) / log(n2 / n1): 1 = linear in the playlists; above 1.1 a stage outgrows the data).

    python bench/scale_table.py 100000=runs/100k 300000=runs/300k [...]

A run's log may hold several runs (skipped or re-run stages): each stage's last "done in" line counts.
"""
from __future__ import annotations

import math
import re
import sys
from pathlib import Path

DONE = re.compile(r"stages: (\w+): done in ([\d.]+) s, peak RSS (\d+) MB")


def stage_figures(run: Path) -> dict[str, tuple[float, int]]:
    """stage -> (seconds, peak RSS MB), the last record of each in run.log."""
    out: dict[str, tuple[float, int]] = {}
    for line in (run / "run.log").read_text().splitlines():
        m = DONE.search(line)
        if m:
            out[m.group(1)] = (float(m.group(2)), int(m.group(3)))
    return out


def table(runs: list[tuple[int, Path]]) -> str:
    """Markdown: a row per stage every run has, then "total" (their sum; the largest peak)."""
    figs = [(n, stage_figures(p)) for n, p in sorted(runs)]
    stages = [s for s in figs[-1][1] if all(s in f for _, f in figs)]
    head = " | ".join(f"{n:,}: wall s / peak MB" for n, _ in figs)
    grow = " | ".join(f"exponent {a:,} -> {b:,}" for (a, _), (b, _) in zip(figs, figs[1:]))
    lines = [f"| stage | {head} | {grow} |", "|---" * (2 * len(figs)) + "|"]
    for s in stages + ["total"]:
        vals = [(sum(f[x][0] for x in stages), max(f[x][1] for x in stages)) if s == "total" else f[s]
                for _, f in figs]
        cells = " | ".join(f"{t:,.0f} / {m:,}" for t, m in vals)
        exps = " | ".join(f"{math.log(max(b[0], 0.1) / max(a[0], 0.1)) / math.log(nb / na):.2f}"
                          for (na, _), (nb, _), a, b in zip(figs, figs[1:], vals, vals[1:]))
        lines.append(f"| {s} | {cells} | {exps} |")
    return "\n".join(lines)


if __name__ == "__main__":
    args = [a.split("=", 1) for a in sys.argv[1:]]
    if len(args) < 2 or any(len(a) != 2 for a in args):
        sys.exit("usage: python bench/scale_table.py N=RUN_DIR N=RUN_DIR [...]")
    print(table([(int(n), Path(p)) for n, p in args]))
