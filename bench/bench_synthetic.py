"""Wall time, peak memory and output size of `python -m preprocess.synthetic` for N playlists.

Runs the real CLI in a child process (so the figures include start-up and the world build),
writes into a temporary folder that is deleted afterwards unless --keep is given, and prints a
markdown row for bench/results/synthetic.md. The machine is shared, so the load average is
printed beside each timing.

    python bench/bench_synthetic.py --playlists 100000 --workers 2
"""
from __future__ import annotations

import argparse
import datetime
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(n_playlists: int, workers: int, seed: int, folder: Path) -> dict:
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "preprocess.synthetic", "--out", str(folder),
                           "--playlists", str(n_playlists), "--seed", str(seed), "--workers", str(workers)],
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"error: generator failed: {proc.stderr.strip().splitlines()[-1:]}")
    # ru_maxrss of children: the largest single process (the parent or one worker), in KiB
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    size = sum(p.stat().st_size for p in folder.glob("mpd.slice.*.json"))
    return {"playlists": n_playlists, "workers": workers, "wall_s": wall, "peak_rss_mb": peak_kib / 1024,
            "bytes": size, "load": (load_before + os.getloadavg()[0]) / 2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--playlists", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=None, help="parent folder for the output (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the generated slices")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="synbench.", dir=args.dir))
    try:
        r = measure(args.playlists, args.workers, args.seed, folder)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    per_m = r["wall_s"] * 1_000_000 / r["playlists"]
    print(f"| {datetime.date.today()} | {r['playlists']:,d} | {r['workers']} | {r['wall_s']:.1f} | "
          f"{per_m / 60:.1f} | {r['peak_rss_mb']:.0f} | {r['bytes'] / 1e9:.2f} | {r['load']:.1f} |")
    if args.keep:
        print(f"slices kept in {folder}")


if __name__ == "__main__":
    main()
