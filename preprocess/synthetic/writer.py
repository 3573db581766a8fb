"""Datasets as slice files: slice k depends only on (seed, k) and the world, so forked workers
write slices in any order from the parent's world, and each file appears whole or not at all."""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import re
import time
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from common.errors import PipelineError
from common.io import atomic_path
from preprocess.synthetic.config import SynthConfig
from preprocess.synthetic.playlists import SliceData, sample_slice
from preprocess.synthetic.render import render_slice
from preprocess.synthetic.world import World, build_world

log = logging.getLogger("synthetic")

SLICE_SIZE = 1000
MAX_PLAYLISTS = 10_000_000
_SLICE_NAME = re.compile(r"mpd\.slice\.\d+-\d+\.json\Z")


def slice_bounds(n_playlists: int) -> list[tuple[int, int]]:
    """(first pid, count) per slice: 1,000 playlists each, the last one possibly shorter."""
    return [(a, min(SLICE_SIZE, n_playlists - a)) for a in range(0, n_playlists, SLICE_SIZE)]


def slice_name(first_pid: int, count: int) -> str:
    return f"mpd.slice.{first_pid}-{first_pid + count - 1}.json"


def make_slice(n_playlists: int, seed: int, index: int, config: SynthConfig = SynthConfig()) -> tuple[SliceData, World]:
    """Slice `index` of a dataset; depends only on (seed, index) and the world."""
    world = build_world(seed, n_playlists, config)
    first, count = slice_bounds(n_playlists)[index]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0, index]))
    return sample_slice(world, rng, count, config), world


def slice_text(n_playlists: int, seed: int, index: int, config: SynthConfig = SynthConfig()) -> str:
    data, world = make_slice(n_playlists, seed, index, config)
    return render_slice(world, data, slice_bounds(n_playlists)[index][0])


def generate(n_playlists: int, seed: int, config: SynthConfig = SynthConfig()) -> Iterator[list[dict]]:
    """The dataset's playlists as MPD dicts, one list per slice (exactly what write_mpd writes)."""
    _check_args(n_playlists, seed)
    for index in range(len(slice_bounds(n_playlists))):
        yield json.loads(slice_text(n_playlists, seed, index, config))["playlists"]


def _write_one(job: tuple[Path, int, int, int, SynthConfig]) -> int:
    out, n_playlists, seed, index, config = job
    first, count = slice_bounds(n_playlists)[index]
    text = slice_text(n_playlists, seed, index, config)
    with atomic_path(out / slice_name(first, count)) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return len(text)


def write_mpd(out: str | Path, n_playlists: int = 20_000, seed: int = 0, workers: int | None = None,
              config: SynthConfig = SynthConfig()) -> list[Path]:
    """Write the dataset as MPD slices into `out`; stale slice files there are removed."""
    _check_args(n_playlists, seed)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PipelineError(f"{out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PipelineError(f"{out}: cannot create directory ({exc.strerror or exc})") from None
    bounds = slice_bounds(n_playlists)
    wanted = {slice_name(a, c) for a, c in bounds}
    stale = [p for p in out.iterdir() if _SLICE_NAME.match(p.name) and p.name not in wanted]
    for p in stale:
        p.unlink()
    if stale:
        log.warning("%s: removed %d slice files of an earlier dataset", out, len(stale))
    t0 = time.perf_counter()
    build_world(seed, n_playlists, config)  # built once before forking, shared by the workers
    jobs = [(out, n_playlists, seed, i, config) for i in range(len(bounds))]
    workers = max(1, min(workers or min(2, os.cpu_count() or 1), len(jobs)))
    if "fork" not in mp.get_all_start_methods():  # workers share the world by forking
        workers = 1
    n_bytes = 0
    bar = tqdm(total=len(jobs), desc="synthetic MPD slices", unit="slice", disable=len(jobs) < 20)
    if workers == 1:
        for job in jobs:
            n_bytes += _write_one(job)
            bar.update()
    else:
        with mp.get_context("fork").Pool(workers) as pool:
            for size in pool.imap(_write_one, jobs, chunksize=1):
                n_bytes += size
                bar.update()
    bar.close()
    log.info("wrote %d playlists in %d slices to %s (%.0f MB, %.1fs, %d workers)", n_playlists, len(jobs), out,
             n_bytes / 1e6, time.perf_counter() - t0, workers)
    return [out / slice_name(a, c) for a, c in bounds]


def _check_args(n_playlists: int, seed: int) -> None:
    if type(n_playlists) is not int or not 1 <= n_playlists <= MAX_PLAYLISTS:
        raise PipelineError(f"--playlists must be an integer in 1..{MAX_PLAYLISTS}, got {n_playlists!r}")
    if type(seed) is not int or not 0 <= seed < 2**32:
        raise PipelineError(f"--seed must be an integer in 0..{2**32 - 1}, got {seed!r}")
