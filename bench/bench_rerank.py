"""Benchmark of the two-stage system (candidates + LightGBM lambdarank reranker).

Writes bench/results/rerank.md with
  1. candidate recall of the withheld tracks at 500 / 1,000 / 2,000 per category, per source and for
     the union (validation playlists): the figures N is picked from;
  2. quality: the reranker trained on one half of the validation playlists against every single
     source on the other half (R-precision, NDCG, clicks per category);
  3. quality on the local challenge set (when --truth is given): trained on all validation playlists;
  4. speed: reranking --playlists playlists (challenge and validation rows repeated) x the configured
     candidates, wall and CPU seconds, with the sources' own top-k time beside it.

Sources: popularity, title popularity, item kNN, artist kNN, and, with --mmcf (and --title), the
MMCF autoencoders mixed with the title model plus the title model alone.

  .venv/bin/python bench/bench_rerank.py --artifacts RUN/artifacts --truth RUN/data/local/truth.json \\
      [--mmcf RUN/mmcf/models --title RUN/charcnn/model] [--config configs/default.toml]
"""
from __future__ import annotations

import argparse
import datetime
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines.models import ArtistKNN, BaselineConfig, ItemKNN, Popularity, TitlePopularity  # noqa: E402
from common.cli import run_cli  # noqa: E402
from pipeline.config import load_pipeline_config  # noqa: E402
from ensemble.candidates import as_source, candidate_recall, merge_candidates  # noqa: E402
from ensemble.config import RerankConfig  # noqa: E402
from ensemble.features import FeatureContext  # noqa: E402
from ensemble.ranker import fit, load_reranker, rerank_with, stratified_share  # noqa: E402
from preprocess.artifacts import PlaylistSet, load_artifacts  # noqa: E402
from report.evaluation import attach_truth, evaluate_ids  # noqa: E402
from report.tables import simple_table  # noqa: E402

log = logging.getLogger("bench_rerank")
KS = (500, 1000, 2000)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", required=True, type=Path)
    ap.add_argument("--truth", type=Path, help="truth.json of the artifacts' challenge set (local test)")
    ap.add_argument("--mmcf", type=Path, help="trained autoencoders, selected on validation (RUN/mmcf/models)")
    ap.add_argument("--title", type=Path, help="trained title model (RUN/charcnn/model); needs --mmcf")
    ap.add_argument("--config", type=Path, help="pipeline TOML, its [rerank] section (default: configs/default.toml)")
    ap.add_argument("--playlists", type=int, default=10000, help="playlists in the speed test")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_rerank"), help="scratch folder for models")
    ap.add_argument("--out", type=Path, default=Path("bench/results/rerank.md"))
    ap.add_argument("--skip", nargs="*", default=[], choices=("recall", "val", "challenge", "speed"))
    args = ap.parse_args(argv)
    cfg_path = args.config or Path(__file__).resolve().parents[1] / "configs" / "default.toml"
    cfg = load_pipeline_config(cfg_path).rerank
    art = load_artifacts(args.artifacts)
    train, val = art.playlists("train"), art.playlists("val")
    chal = art.playlists("challenge")
    if args.truth:
        chal = attach_truth(chal, args.truth, art.vocab)
    clock = time.perf_counter()
    models, dense_tracks = make_sources(train, art, cfg, args.mmcf, args.title)
    ctx = FeatureContext.build(train, art.vocab, cfg.cooc_max_playlists, cfg.seed, dense_tracks=dense_tracks)
    log.info("sources and feature context in %.1f s", time.perf_counter() - clock)
    depth = max(max(KS), cfg.list_depth)
    lists_val, t_val = source_lists(models, val, depth)
    lines = ["# Two-stage reranker: figures\n",
             f"Command: `.venv/bin/python bench/bench_rerank.py {' '.join(sys.argv[1:] if argv is None else argv)}`  ",
             "Machine: 2-core CPU, 24 GiB (shared with other jobs while measured: wall times are upper bounds)  ",
             f"Date: {datetime.date.today().isoformat()}  ",
             f"Data: {args.artifacts} ({len(train)} training, {len(val)} validation, {len(chal)} challenge playlists, "
             f"{art.vocab.n_tracks} tracks)  ",
             f"Config: {cfg_path} `[rerank]`; sources: {', '.join(models)}\n"]
    if "recall" not in args.skip:
        lines += recall_section(lists_val, val, cfg)
    if "val" not in args.skip:
        half = stratified_share(val.category, 0.5, cfg.seed + 1)
        a, b = np.flatnonzero(~half), np.flatnonzero(half)
        lines += quality_section("Validation: trained on one half, evaluated on the other",
                                 ctx, val.subset(a), _rows(lists_val, a), val.subset(b), _rows(lists_val, b),
                                 art.vocab, cfg, args.work / "half")
    if "challenge" not in args.skip and args.truth:
        lists_chal, _ = source_lists(models, chal, cfg.list_depth)
        lines += quality_section("Local challenge set: trained on all validation playlists",
                                 ctx, val, lists_val, chal, lists_chal, art.vocab, cfg, args.work / "all")
    if "speed" not in args.skip:
        lines += speed_section(ctx, models, chal, val, art.vocab, cfg, args.playlists, args.work / "all"
                               if (args.work / "all" / "reranker.txt").exists() else None, args.work / "speed")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def make_sources(train: PlaylistSet, art, cfg: RerankConfig, mmcf_dir: Path | None,
                 title_dir: Path | None) -> tuple[dict, np.ndarray | None]:
    """The sources, and the catalogue ids of the autoencoders' dense vocabulary (None without --mmcf)."""
    pop = Popularity(train)
    cb = BaselineConfig()
    models: dict = {}
    dense_tracks = None
    if mmcf_dir:
        mmcf, dense_tracks = mmcf_sources(art, pop, mmcf_dir, title_dir)
        models |= mmcf
    models |= {"item_knn": ItemKNN(train, pop, cb), "artist_knn": ArtistKNN(train, pop, cb)}
    models |= {"title_popularity": TitlePopularity(train, pop, cb), "popularity": pop}
    return models, dense_tracks


def mmcf_sources(art, pop: Popularity, mmcf_dir: Path, title_dir: Path | None) -> tuple[dict, np.ndarray]:
    """MMCF (autoencoders mixed with the title model) as a list source, the title model as a scorer
    (over the autoencoders' dense vocabulary: no score for the other catalogue tracks)."""
    import torch

    from mmcf.mixing import mmcf_lists
    from mmcf.predict import load_models

    dae = load_models(mmcf_dir, "cpu")
    dense = dae.dense
    title = None
    out: dict = {}
    if title_dir:
        from charcnn.train import load_title_model
        title = load_title_model(title_dir, "cpu", expect_fingerprint=art.vocab.fingerprint)
        n_tracks = art.vocab.n_tracks

        class TitleScorer:
            def score(self, ps: PlaylistSet, rows: np.ndarray) -> np.ndarray:
                with torch.no_grad():
                    p = title.probs(torch.from_numpy(np.ascontiguousarray(ps.title_chars[rows])))
                scores = np.full((len(rows), n_tracks), -np.inf, dtype=np.float32)
                scores[:, dense.tracks] = p[:, :dense.n_tracks].numpy()
                return scores
        out["title_model"] = TitleScorer()

    class MMCF:
        def lists(self, ps: PlaylistSet, k: int):
            return mmcf_lists(ps, title, dae, art.vocab, pop.order(), k=k)
    return {"mmcf": MMCF()} | out, dense.tracks


def source_lists(models: dict, ps: PlaylistSet, k: int) -> tuple[dict, dict]:
    lists, seconds = {}, {}
    for name, m in models.items():
        start = time.perf_counter()
        lists[name] = m.lists(ps, k) if hasattr(m, "lists") else as_source(name, m, ps, k)
        if not isinstance(lists[name], tuple):
            lists[name] = (lists[name].ids, lists[name].scores)
        seconds[name] = time.perf_counter() - start
        log.info("%s: top %d for %d playlists in %.1f s", name, k, len(ps), seconds[name])
    return lists, seconds


def recall_section(lists: dict, ps: PlaylistSet, cfg: RerankConfig) -> list[str]:
    rows, cats = [], {}
    for name, (ids, _) in lists.items():
        r = candidate_recall(ids, ps, KS)
        rows.append([name] + [f"{r[f'recall@{k}']:.4f}" for k in KS])
        cats[name] = r
    srcs = [as_source(n, v, ps, v[0].shape[1]) for n, v in lists.items()]
    union = merge_candidates(srcs, ps, {n: max(KS) for n in lists}, max(KS),
                             cfg.cold_depth or None, cfg.default_depth)
    r = candidate_recall(union.to_dense(max(KS)), ps, KS)
    rows.append(["union, round robin"] + [f"{r[f'recall@{k}']:.4f}" for k in KS])
    cats["union"] = r
    conf = merge_candidates(srcs, ps, cfg.depth, cfg.candidates, cfg.cold_depth or None, cfg.default_depth)
    rc = candidate_recall(conf.to_dense(cfg.candidates), ps, (cfg.candidates,))
    out = ["## 1. Candidate recall (validation playlists)\n",
           "Share of each playlist's withheld tracks (all of them, in the vocabulary or not) among the first k "
           "candidates. Withheld tracks inside the vocabulary bound every figure: "
           f"{ps.holdout.nnz / max(ps.n_holdouts.sum(), 1):.4f} of all.\n",
           simple_table(["source", *(f"recall@{k}" for k in KS)], rows), "",
           f"Configured union (depth {cfg.depth}, {cfg.candidates} candidates): "
           f"recall@{cfg.candidates} {rc[f'recall@{cfg.candidates}']:.4f}\n",
           "Per category (union, round robin):\n"]
    per = [[f"{c} {v['name']}"] + [f"{v[f'recall@{k}']:.4f}" for k in KS] for c, v in r["per_category"].items()]
    out += [simple_table(["category", *(f"recall@{k}" for k in KS)], per), ""]
    return out


def quality_section(title: str, ctx: FeatureContext, fit_ps: PlaylistSet, fit_lists: dict, test_ps: PlaylistSet,
                    test_lists: dict, vocab, cfg: RerankConfig, work: Path) -> list[str]:
    start = time.perf_counter()
    summary = fit(ctx, fit_ps, fit_lists, work, cfg)
    fit_s = time.perf_counter() - start
    model = load_reranker(work)
    start = time.perf_counter()
    ids, _ = rerank_with(model, ctx, test_ps, test_lists, cfg)
    rr_s = time.perf_counter() - start
    table = {"rerank": evaluate_ids(ids, test_ps, vocab)}
    for name in test_lists:
        table[name] = evaluate_ids(as_source(name, test_lists[name], test_ps, 500).ids[:, :500], test_ps, vocab)
    singles = [n for n in table if n != "rerank"]
    best = "mmcf" if "mmcf" in table else max(singles, key=lambda n: table[n]["r_precision"])
    out = [f"## {title}\n",
           f"Fit on {summary['train_playlists']} + {summary['valid_playlists']} (early stopping) playlists with "
           f"withheld tracks among the candidates, {summary['train_pairs']} pairs, best iteration "
           f"{summary['best_iteration']}, {fit_s:.0f} s; reranked {len(test_ps)} playlists in {rr_s:.1f} s.\n"]
    head = ["model", "R-prec", "NDCG", "clicks"]
    out += [simple_table(head, [[n, f"{t['r_precision']:.4f}", f"{t['ndcg']:.4f}", f"{t['clicks']:.3f}"]
                                for n, t in table.items()]), ""]
    out.append(f"Per category, reranker vs {'MMCF' if best == 'mmcf' else 'the best single source'} ({best}); "
               "wins counted per metric:\n")
    rows, wins = [], {"r_precision": 0, "ndcg": 0, "clicks": 0}
    for c, mine in table["rerank"]["per_category"].items():
        other = table[best]["per_category"][c]
        wins["r_precision"] += mine["r_precision"] > other["r_precision"]
        wins["ndcg"] += mine["ndcg"] > other["ndcg"]
        wins["clicks"] += mine["clicks"] <= other["clicks"]
        rows.append([f"{c} {mine['name']}"] + [f"{mine[m]:.4f} / {other[m]:.4f}" for m in ("r_precision", "ndcg")]
                    + [f"{mine['clicks']:.2f} / {other['clicks']:.2f}"])
    out += [simple_table(["category", "R-prec rerank / best", "NDCG rerank / best", "clicks rerank / best"], rows), "",
            f"Categories where the reranker is better: R-prec {wins['r_precision']}/10, NDCG {wins['ndcg']}/10, "
            f"clicks no worse {wins['clicks']}/10.\n"]
    imp = load_gain(work)
    out += ["Top features by gain: " + ", ".join(f"{k} {v:.0f}" for k, v in imp[:15]) + "\n"]
    return out


def speed_section(ctx: FeatureContext, models: dict, chal: PlaylistSet, val: PlaylistSet, vocab,
                  cfg: RerankConfig, n: int, trained: Path | None, work: Path) -> list[str]:
    if trained is None:
        fit(ctx, val, source_lists(models, val, cfg.list_depth)[0], work, cfg)
        trained = work
    pool = np.r_[np.arange(len(chal)), len(chal) + np.arange(len(val))]
    rows = pool[np.arange(n) % len(pool)]
    both = _concat(chal, val)
    ps = both.subset(rows)
    lists, seconds = source_lists(models, ps, cfg.list_depth)
    model = load_reranker(trained)
    wall, cpu = time.perf_counter(), time.process_time()
    ids, _ = rerank_with(model, ctx, ps, lists, cfg)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    srcs = [as_source(k, v, ps, cfg.list_depth) for k, v in lists.items()]
    n_cands = merge_candidates(srcs, ps, cfg.depth, cfg.candidates, cfg.cold_depth or None, cfg.default_depth).counts()
    return ["## Speed\n",
            f"Reranking {n} playlists (challenge and validation rows repeated) x {n_cands.mean():.0f} candidates "
            f"on average ({cfg.num_threads} LightGBM threads): **{wall:.1f} s wall**, {cpu:.1f} s CPU "
            f"(merge + features + prediction + fill; limit 600 s).  ",
            "Sources' own top-" + str(cfg.list_depth) + " lists for the same playlists: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()) + ".\n",
            f"Output: {ids.shape}, every row full: {bool((ids >= 0).all())}.\n"]


def load_gain(work: Path) -> list[tuple[str, float]]:
    import json
    gain = json.loads((work / "importance.json").read_text())["gain"]
    return sorted(gain.items(), key=lambda kv: -kv[1])


def _rows(lists: dict, rows: np.ndarray) -> dict:
    return {k: (ids[rows], sc[rows]) for k, (ids, sc) in lists.items()}


def _concat(a: PlaylistSet, b: PlaylistSet) -> PlaylistSet:
    import dataclasses

    import scipy.sparse as sp
    kw = {}
    for f in dataclasses.fields(PlaylistSet):
        x, y = getattr(a, f.name), getattr(b, f.name)
        kw[f.name] = sp.vstack([x, y], format="csr") if sp.issparse(x) else np.concatenate([x, y])
    return PlaylistSet(**kw)


if __name__ == "__main__":
    run_cli(main)
