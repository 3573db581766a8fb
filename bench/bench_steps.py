"""Each step of "use all the data", measured in one sequence of runs on one dataset.

    python bench/bench_steps.py --out /tmp/steps_mpd [--profile mpd] [--playlists 20000] [--config configs/default.toml]

Steps, each the previous one plus one change (a config layered over --config):
  A  before: MMCF's min counts (tracks >= 5, artists >= 3), final models fit on the training
     playlists only, no ALS source for the reranker
  B  + catalogue: every track and artist (min counts 1); the dense models keep the same budget
  C  + vocabulary budget: the dense models' budget as --config sets it (A and B use --small-budget-mb)
  D  + refit: every playlist (training + validation) trains the final models
  E  + ALS source: matrix factorisation as a candidate source and ranker features (= --config)
Every run also measures implicit ALS over its own catalogue; the table's ALS column is step E's
(every track, every playlist). A step's folder starts as a copy of the previous one, so stages whose
inputs and settings did not change are skipped (stage records). Prints and writes OUT/steps.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ensemble.config import SOURCE_ORDER  # noqa: E402
from report.tables import metrics_table  # noqa: E402

NO_ALS = [s for s in SOURCE_ORDER if s != "als"]
SMALL = "small"  # stands for --small-budget-mb
STEPS = {
    "A": ("before", {"preprocess": {"min_track_count": 5, "min_artist_count": 3}, "run": {"refit": False},
                     "mmcf": {"dense_memory_mb": SMALL}, "rerank": {"sources": NO_ALS}}),
    "B": ("+ catalogue", {"run": {"refit": False}, "mmcf": {"dense_memory_mb": SMALL}, "rerank": {"sources": NO_ALS}}),
    "C": ("+ vocabulary budget", {"run": {"refit": False}, "rerank": {"sources": NO_ALS}}),
    "D": ("+ refit on every playlist", {"rerank": {"sources": NO_ALS}}),
    "E": ("+ ALS source", {}),
}


def step_config(base: Path, profile: str, playlists: int, small: float, sections: dict) -> str:
    """TOML text: `base` plus the data setting and the step's sections."""
    sections = {k: dict(v) for k, v in sections.items()}
    sections.setdefault("run", {}).update(synthetic_profile=profile, synthetic_playlists=playlists)
    lines = [f'base = "{base}"']
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(small if v == SMALL else v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "default.toml")
    ap.add_argument("--profile", default="mpd", help="synthetic profile (preprocess.synthetic.PROFILES)")
    ap.add_argument("--playlists", type=int, default=20000)
    ap.add_argument("--small-budget-mb", type=float, default=400.0, help="dense budget of steps A and B")
    ap.add_argument("--steps", default="ABCDE")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows, previous = {}, None
    for step in args.steps:
        name, body = STEPS[step]
        folder = args.out / step
        cfg = args.out / f"{step}.toml"
        cfg.write_text(step_config(args.config.resolve(), args.profile, args.playlists, args.small_budget_mb, body))
        if previous is not None and not folder.exists():
            shutil.copytree(previous, folder)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "run.py", "--out", str(folder), "--config", str(cfg)], cwd=ROOT,
                              capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"step {step} failed: {proc.stderr[-2000:]}")
        metrics = json.loads((folder / "metrics.json").read_text())["test"]
        rows[f"{step} {name}"] = metrics["rerank"]
        rows.setdefault("ALS", metrics["als"])
        if step == args.steps[-1]:
            rows["ALS"] = metrics["als"]
        print(f"step {step} ({name}): {time.perf_counter() - start:.0f} s; rerank "
              f"{metrics['rerank']['r_precision']:.4f} / {metrics['rerank']['ndcg']:.4f} / {metrics['rerank']['clicks']:.3f}",
              flush=True)
        previous = folder
    table = metrics_table(rows)
    (args.out / "steps.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
