"""Stage bookkeeping for run.py: a stage whose inputs and config are unchanged is skipped.

Each stage folder holds `stage.json` with a key (a hash of the stage's config and its inputs'
keys), written last, so a stage killed half-way has no record and is simply run again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

from common.io import read_json, write_json
from common.memory import peak_rss_mb, release_free_memory, reset_peak_rss

log = logging.getLogger("stages")


def stage_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def run_stage(folder: Path, key: str, fn: Callable[[], dict], force: bool = False) -> dict:
    """Run fn() unless folder/stage.json records the same key; returns fn's (JSON-able) result."""
    record = folder / "stage.json"
    if not force and record.exists():
        done = read_json(record)
        if done.get("key") == key:
            log.info("%s: up to date, skipped (use --force to re-run)", folder.name)
            return done["result"] | {"seconds": done.get("seconds", 0.0), "skipped": True}
    folder.mkdir(parents=True, exist_ok=True)
    record.unlink(missing_ok=True)  # a forced re-run killed half-way leaves no record of the old run
    release_free_memory()  # the stage's peak is its own, not what the stages before it freed
    reset_peak_rss()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    write_json(record, {"key": key, "result": result, "seconds": seconds, "peak_rss_mb": peak})
    log.info("%s: done in %.1f s, peak RSS %s", folder.name, seconds, "n/a" if peak is None else f"{peak:.0f} MB")
    return result | {"seconds": seconds, "skipped": False}
