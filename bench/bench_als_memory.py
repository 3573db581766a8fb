"""Peak memory of ALS: one fit with implicit's own start against ALS.fit's in-place start, and the
baselines stage's ALS source (rank search, then the refit on every playlist), each in a fresh process.

The 1M run's peak (18.7 GB) was the moment ALS's refit began: the validation model's
item factors were still held, and implicit's `random(...) * 0.01` start made a second copy of the
new ones. The peaks are the process's (VmHWM) over the fit alone, after the playlists are loaded.

    python bench/bench_als_memory.py --artifacts runs/default/artifacts [--factors 256]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(mode: str, artifacts: str, factors: int) -> dict:
    from threadpoolctl import threadpool_limits

    from baselines.als import ALS, _implicit_als
    from common.sparse import binary
    from common.stages import peak_rss_mb, reset_peak_rss
    from pipeline import stages
    from pipeline.config import load_pipeline_config
    from preprocess.artifacts import load_artifacts

    art = load_artifacts(artifacts)
    conf = load_pipeline_config(ROOT / "configs" / "default.toml")
    cfg = conf.owned["als"] = dataclasses.replace(conf.settings("als"), factors=[factors])
    if mode == "source":
        data = stages.SourceData.load(art, conf.run.refit)
    else:
        train = art.playlists("train")
        x = binary(train.tracks)
    loaded = peak_rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    if mode == "implicit":
        model = _implicit_als(factors, cfg)
        with threadpool_limits(1, "blas"):
            model.fit(x, show_progress=False)
    elif mode == "ours":
        ALS.fit(train, factors, cfg)
    else:
        with tempfile.TemporaryDirectory() as out:
            stages.fit_source("als", art, Path(out), conf, data=data)
    return {"mode": mode, "seconds": round(time.perf_counter() - start, 1), "loaded_mb": round(loaded or 0),
            "peak_mb": round(peak_rss_mb() or 0), "item_factors_mb": round(art.vocab.n_tracks * factors * 4 / 2**20)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--factors", type=int, default=256)
    ap.add_argument("--child", choices=["implicit", "ours", "source"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.artifacts, args.factors)))
        return
    rows = []
    for mode in ("implicit", "ours", "source"):
        done = subprocess.run([sys.executable, __file__, "--artifacts", args.artifacts, "--factors", str(args.factors),
                               "--child", mode], capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    implicit, ours = rows[0], rows[1]
    print(f"one fit at {args.factors} factors: implicit's start {implicit['peak_mb']} MB, in place {ours['peak_mb']} MB "
          f"({ours['peak_mb'] / implicit['peak_mb']:.2f}x; item factors {ours['item_factors_mb']} MB); "
          f"the ALS source (search + refit): {rows[2]['peak_mb']} MB")


if __name__ == "__main__":
    main()
