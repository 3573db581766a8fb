"""Ablation of the autoencoder's three design choices on a finished `run.py` output folder.

Variants, each scored alone (no title model) on the validation playlists and the local challenge set:
  - mmcf: the run's own models (four schemes, hide-and-seek, tied then untied);
  - tracks_only: no hide-and-seek; every batch feeds tracks, and prediction feeds no artists;
  - tied_only: no untied phase; the tied phase gets the untied updates too (same budget);
  - one_scheme: one model for every category, trained on in-order first-N inputs with N a uniform
    fraction of the playlist, with the budget of all four schemes together.
Everything else (config, seed, data) is the run's. Writes bench/results/ablation.md and
<run>/report/ablation.md, and links the latter from <run>/report/report.md.

    python bench/bench_ablation.py --run runs/default
"""
from __future__ import annotations

import argparse
import copy
import datetime
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmcf.config import MMCFConfig, SchemeConfig  # noqa: E402
from mmcf.predict import load_models, predict  # noqa: E402
from mmcf.train import train_all  # noqa: E402
from pipeline.config import load_pipeline_config  # noqa: E402
from preprocess.artifacts import load_artifacts  # noqa: E402
from report.evaluation import attach_truth, evaluate_ids  # noqa: E402
from report.tables import metrics_table  # noqa: E402
from report.write import attach_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def variants(base: MMCFConfig) -> dict[str, MMCFConfig]:
    tracks_only = copy.deepcopy(base)
    tracks_only.artist_weight = 0.0
    for s in tracks_only.schemes:
        s.hide_and_seek = False
    tied_only = copy.deepcopy(base)
    for s in tied_only.schemes:
        s.tied_updates, s.untied_updates, s.untied = s.tied_updates + s.untied_updates, 0, False
    one = copy.deepcopy(base)
    one.schemes = [SchemeConfig("all_first_n", list(range(1, 11)), "fraction", [0.0, 1.0], [0.75, 0.75], untied=True,
                                tied_updates=sum(s.tied_updates for s in base.schemes),
                                untied_updates=sum(s.untied_updates for s in base.schemes))]
    return {"tracks_only": tracks_only, "tied_only": tied_only, "one_scheme": one}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a finished run.py output folder")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "default.toml", help="the run's config")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_ablation"), help="models of the variants")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ablation.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = load_pipeline_config(args.config).mmcf
    art = load_artifacts(args.run / "artifacts")
    val = art.playlists("val")
    test = attach_truth(art.playlists("challenge"), args.run / "data" / "local" / "truth.json", art.vocab)
    folders = {"mmcf": (args.run / "mmcf" / "models", None)}
    folders.update({name: (args.work / name, cfg) for name, cfg in variants(base).items()})
    results, seconds = {}, {}
    for name, (folder, cfg) in folders.items():
        t0 = time.perf_counter()
        if cfg is not None:
            train_all(art, folder, cfg, "cpu")
        seconds[name] = time.perf_counter() - t0
        models = load_models(folder)
        results[name] = {split: evaluate_ids(predict(models, ps, art.vocab)[0], ps, art.vocab)
                         for split, ps in (("val", val), ("test", test))}
        print(f"{name}: test R-precision {results[name]['test']['r_precision']:.4f}, trained in {seconds[name]:.0f} s",
              flush=True)
    text = "\n".join([
        "# Autoencoder ablation\n",
        f"Command: `python bench/bench_ablation.py --run {args.run}`  ",
        f"Date: {datetime.date.today()}; machine: 2-core CPU, 24 GiB, no GPU; torch threads {args.threads}  ",
        f"Data: {len(art.playlists('train'))} training, {len(val)} validation, {len(test)} challenge playlists "
        f"(20K synthetic default). Each variant is the autoencoder alone (no title model); title-only playlists "
        "get popularity from every variant.\n",
        "- **mmcf**: four schemes, hide-and-seek, tied then untied (the run's own models).",
        "- **tracks_only**: the same without hide-and-seek: tracks fed every batch, no artists fed at prediction.",
        "- **tied_only**: the same without the untied phase; the tied phase gets its updates (same budget).",
        "- **one_scheme**: one model for all categories (in-order first N, N a uniform fraction of the "
        "playlist), with the four schemes' budgets summed.\n",
        "Local challenge set (test):\n", metrics_table({n: r["test"] for n, r in results.items()}) + "\n",
        "Validation playlists:\n", metrics_table({n: r["val"] for n, r in results.items()}) + "\n",
        "Training seconds: " + ", ".join(f"{n} {s:.0f}" for n, s in seconds.items() if n != "mmcf") + ".\n",
    ])
    args.out.write_text(text)
    attach_section(args.run / "report", "ablation.md", "Autoencoder ablation", text, "bench/bench_ablation.py")
    print(text)


if __name__ == "__main__":
    main()
