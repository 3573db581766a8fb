"""Each step of "use all the data", measured in one sequence of runs on one dataset.

    python bench/bench_steps.py --out /tmp/steps [--profile mpd|realistic] [--playlists 20000] [--config configs/default.toml]

Steps (a config layered over --config; a step's folder starts as a copy of its parent's, so stages
whose inputs and settings did not change are skipped by their stage records):
  A  before: MMCF's min counts (tracks >= 5, artists >= 3), the final models fit on the training
     playlists only, no ALS source for the reranker
  B  + catalogue (parent A): every track and artist; the dense models take what --small-budget-mb
     holds (at 20K playlists the smallest count c that fits is 5, MMCF's own threshold)
  C  + a larger vocabulary budget (parent B): --large-budget-mb; a side step, D builds on B
  D  + refit (parent B): every playlist (training + validation) trains the final models
  E  + ALS source (parent D): matrix factorisation as a candidate source and ranker features;
     E is --config itself when --small-budget-mb is its dense budget (both default to 400 MB)
Every run also measures implicit ALS over its own catalogue; the table's ALS column is step E's
(every track, every playlist, rank chosen on validation). Prints and writes OUT/steps.md.
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

from pipeline.config import RERANK_SOURCES  # noqa: E402
from report.tables import metrics_table  # noqa: E402

NO_ALS = [s for s in RERANK_SOURCES if s != "als"]
SMALL, LARGE = "small", "large"  # stand for --small-budget-mb and --large-budget-mb
STEPS = {  # name: (label, parent, sections)
    "A": ("before", None, {"preprocess": {"min_track_count": 5, "min_artist_count": 3}, "run": {"refit": False},
                           "mmcf": {"dense_memory_mb": SMALL}, "rerank": {"sources": NO_ALS}}),
    "B": ("+ catalogue", "A", {"run": {"refit": False}, "mmcf": {"dense_memory_mb": SMALL},
                               "rerank": {"sources": NO_ALS}}),
    "C": ("+ larger vocabulary budget", "B", {"run": {"refit": False}, "mmcf": {"dense_memory_mb": LARGE},
                                              "rerank": {"sources": NO_ALS}}),
    "D": ("+ refit on every playlist", "B", {"mmcf": {"dense_memory_mb": SMALL}, "rerank": {"sources": NO_ALS}}),
    "E": ("+ ALS source", "D", {"mmcf": {"dense_memory_mb": SMALL}}),
}


def step_config(base: Path, profile: str, playlists: int, budgets: dict, sections: dict) -> str:
    """TOML text: `base` plus the data setting and the step's sections."""
    sections = {k: dict(v) for k, v in sections.items()}
    sections.setdefault("run", {}).update(synthetic_profile=profile, synthetic_playlists=playlists)
    lines = [f'base = "{base}"']
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(budgets.get(v, v) if isinstance(v, str) else v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "default.toml")
    ap.add_argument("--profile", default="mpd", help="synthetic profile (preprocess.synthetic.PROFILES)")
    ap.add_argument("--playlists", type=int, default=20000)
    ap.add_argument("--small-budget-mb", type=float, default=400.0, help="dense budget of steps A, B, D, E")
    ap.add_argument("--large-budget-mb", type=float, default=600.0, help="dense budget of step C")
    ap.add_argument("--steps", default="ABCDE")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = {}
    budgets = {SMALL: args.small_budget_mb, LARGE: args.large_budget_mb}
    for step in args.steps:
        name, parent, body = STEPS[step]
        folder = args.out / step
        cfg = args.out / f"{step}.toml"
        cfg.write_text(step_config(args.config.resolve(), args.profile, args.playlists, budgets, body))
        if parent is not None and not folder.exists():
            shutil.copytree(args.out / parent, folder)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "run.py", "--out", str(folder), "--config", str(cfg)], cwd=ROOT,
                              capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"step {step} failed: {proc.stderr[-2000:]}")
        metrics = json.loads((folder / "metrics.json").read_text())["test"]
        rows[f"{step} {name}"] = metrics["rerank"]
        rows["ALS"] = metrics["als"]  # the last step's: every track, every playlist
        m = metrics["rerank"]["category_mean"]
        print(f"step {step} ({name}): {time.perf_counter() - start:.0f} s; rerank (categories equal) "
              f"{m['r_precision']:.4f} / {m['ndcg']:.4f} / {m['clicks']:.3f}", flush=True)
    table = metrics_table(rows)
    (args.out / "steps.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
