"""Title model benchmark: per-category validation metrics of the baselines, the autoencoders
alone, and MMCF (autoencoders + character CNN, and + character LSTM), with training times.

    .venv/bin/python bench/bench_charcnn.py --artifacts RUN/artifacts --dae RUN/mmcf/models --out DIR
        [--config FILE] [--truth RUN/data/local/truth.json] [--report RUN/report]

Prints a markdown table (R-precision / NDCG / clicks per category and overall) for
bench/results/charcnn.md; with --report it also writes them as title_models.md into a run's report
folder and links them from its report.md. Title models are trained (or resumed) under OUT/cnn and OUT/lstm.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines.models import BaselineConfig, ItemKNN, Popularity, TitlePopularity, recommend  # noqa: E402
from charcnn.train import load_title_model, train_title_model  # noqa: E402
from common.cli import run_cli  # noqa: E402
from pipeline.config import load_pipeline_config  # noqa: E402
from common.metrics import list_metrics, summarize  # noqa: E402
from mmcf.mixing import mmcf_lists  # noqa: E402
from mmcf.predict import load_models, predict  # noqa: E402
from preprocess.artifacts import load_artifacts  # noqa: E402
from report.evaluation import attach_truth  # noqa: E402
from report.write import attach_section  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--dae", required=True, help="trained autoencoders, selected on validation (RUN/mmcf/models)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", help="pipeline TOML (its [charcnn] section; defaults without it)")
    ap.add_argument("--archs", default="cnn,lstm")
    ap.add_argument("--truth", help="truth.json of the artifacts' challenge set: adds the local test table")
    ap.add_argument("--report", help="a run's report folder: the tables go there too (title_models.md)")
    args = ap.parse_args(argv)
    art = load_artifacts(args.artifacts)
    train, vocab = art.playlists("train"), art.vocab
    splits = {"validation": art.playlists("val")}
    if args.truth:
        splits["test (local challenge set)"] = attach_truth(art.playlists("challenge"), Path(args.truth), vocab)
    models = load_models(args.dae, "cpu")
    results: dict = {split: {} for split in splits}
    times = {}

    pop = Popularity(train)
    bcfg = BaselineConfig()
    for m in (pop, TitlePopularity(train, pop, bcfg), ItemKNN(train, pop, bcfg)):
        for split, ps in splits.items():
            results[split][m.name] = summarize(list_metrics(recommend(m, ps)[0], ps, vocab.track_artist),
                                               ps.category)
    for split, ps in splits.items():
        start = time.perf_counter()
        results[split]["dae_alone"] = summarize(list_metrics(predict(models, ps, vocab)[0], ps, vocab.track_artist),
                                                ps.category)
        times[f"dae_alone predict ({split}, {len(ps)} playlists)"] = time.perf_counter() - start

    base = load_pipeline_config(args.config).charcnn
    for arch in args.archs.split(","):
        cfg = dataclasses.replace(base, arch=arch)
        out = Path(args.out) / arch
        summary = train_title_model(art, models, out, cfg, "cpu")
        times[f"{arch} training ({summary['updates']} updates)"] = summary["train_seconds"]
        title = load_title_model(out, "cpu", vocab.fingerprint)
        for split, ps in splits.items():
            start = time.perf_counter()
            ids, _ = mmcf_lists(ps, title, models, vocab, pop.order(), batch=cfg.predict_batch)
            times[f"{arch} mixed predict ({split}, {len(ps)} playlists)"] = time.perf_counter() - start
            results[split][f"mmcf_{arch}"] = summarize(list_metrics(ids, ps, vocab.track_artist), ps.category)

    (Path(args.out) / "bench.json").write_text(json.dumps({"results": results, "times": times}, indent=1))
    text = "\n".join(f"\n{split}: R-precision / NDCG / clicks\n\n{table(results[split])}" for split in splits)
    text += "\n\n" + "\n".join(f"- {k}: {v:.1f} s" for k, v in times.items()) + "\n"
    print(text)
    if args.report:
        head = ("# Title models: baselines, the autoencoders alone, MMCF with the character CNN and with the "
                "character LSTM\n\nCommand: `python bench/bench_charcnn.py " + " ".join(argv or sys.argv[1:]) + "`\n")
        attach_section(Path(args.report), "title_models.md", "Title models (CNN and LSTM)", head + text,
                       "bench/bench_charcnn.py")
    return 0


def table(results: dict) -> str:
    names = list(results)
    first = results[names[0]]["per_category"]
    head = "| category | " + " | ".join(names) + " |\n|---|" + "---|" * len(names)
    lines = [head]
    for cid, meta in first.items():
        cells = [f"{results[n]['per_category'][cid]['r_precision']:.4f} / {results[n]['per_category'][cid]['ndcg']:.4f}"
                 f" / {results[n]['per_category'][cid]['clicks']:.2f}" for n in names]
        lines.append(f"| {cid} {meta['name']} ({meta['playlists']}) | " + " | ".join(cells) + " |")
    cells = [f"**{results[n]['r_precision']:.4f} / {results[n]['ndcg']:.4f} / {results[n]['clicks']:.2f}**"
             for n in names]
    lines.append("| all | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    run_cli(main)
