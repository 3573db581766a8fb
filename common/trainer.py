"""One training loop for the torch models (the autoencoders, the title model, the sequence model):
a stated number of updates (epochs of them, for the autoencoders and the title model), validation
every `eval_every` updates with model selection, an atomic checkpoint after every check and resume
from it, progress, an optional time budget and patience, each stop said in the log and kept as
`Selection.stop_reason`, and the rules of several processes (rank 0 validates and writes, the
others receive its score, so every rank keeps the same weights).

A model brings `step(u)`, the Adam update number u (its batch and random masks a pure function of
u and its seeds, so a resumed run draws what an uninterrupted one would have drawn) returning the
loss or NaN, and `validate()`, its validation metrics. Selection keeps the weights of the best
check; without validation (a refit on every playlist) the latest weights are kept.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from common import distributed
from common.io import atomic_path
from common.memory import release_free_memory
from common.progress import Progress

log = logging.getLogger("trainer")
FORMAT = 3  # of the checkpoint: one written by another format (the loops before this module) is not resumed


@dataclass
class Selection:
    """The best check so far, carried across phases (an untied autoencoder must beat the tied one)."""

    best: float = -math.inf
    best_state: dict | None = None  # the kept weights, on the CPU
    best_tag: dict = field(default_factory=dict)  # the phase they come from
    history: list[dict] = field(default_factory=list)
    stale: int = 0  # checks since the last improvement
    seconds: float = 0.0  # training and validation so far, across phases and resumed runs
    train_seconds: float = 0.0  # of which in update steps
    phase_start: float = 0.0  # `seconds` when the current loop began (its time budget counts from there)
    stop_reason: str = ""  # why the last loop ended

    def score_text(self) -> str:
        return f"{self.best:.4f}" if math.isfinite(self.best) else "-"


@dataclass
class Loop:
    updates: int
    eval_every: int
    desc: str  # names the phase in logs and progress
    checkpoint: Path | None  # None: no checkpoint (nothing to resume)
    key: str  # what the weights depend on: a checkpoint written with another key is not resumed
    tag: dict = field(default_factory=dict)  # merged into every history entry (the phase)
    patience: int = 0  # stop after this many checks without improvement (0: never)
    seconds: float = 0.0  # time budget of the loop, training and checks (0: none)


def run(loop: Loop, model: nn.Module, optimizers: list[torch.optim.Optimizer], step: Callable[[int], float],
        validate: Callable[[], dict] | None, selection: Selection) -> Selection:
    """Train `loop.updates` updates (resuming from the loop's checkpoint) and return the selection.
    A time budget ends the loop at the first update past it, with a last check there."""
    start = _resume(loop, model, optimizers, selection)
    if start == 0:
        selection.phase_start = selection.seconds
    mark = time.perf_counter()
    losses: list[float] = []
    u = start
    selection.stop_reason = ""
    with Progress(loop.updates, loop.desc, "updates", initial=start, disable=not distributed.is_main()) as bar:
        while u < loop.updates and not selection.stop_reason:
            t = time.perf_counter()
            loss = step(u)
            selection.train_seconds += time.perf_counter() - t
            if not np.isnan(loss):
                losses.append(loss)
            u += 1
            bar.update()
            out_of_time = _out_of_time(loop, selection, mark)
            if u % loop.eval_every == 0 or u == loop.updates or out_of_time:
                _check(loop, model, validate, selection, u, losses, mark)
                bar.set_postfix(val_rprec=f"{selection.history[-1]['val_r_precision']:.4f}", best=selection.score_text())
                losses = []
                selection.stop_reason = _stop_reason(loop, selection, u, out_of_time)
                if distributed.is_main() and loop.checkpoint is not None:
                    _save(loop, model, optimizers, selection, u)
                mark = time.perf_counter()
    selection.stop_reason = selection.stop_reason or f"all {loop.updates} updates trained"
    if selection.best_state is None:  # no check ran (no updates): the initial weights
        selection.best_state, selection.best_tag = cpu_state(model), dict(loop.tag)
    return selection


def _out_of_time(loop: Loop, selection: Selection, mark: float) -> bool:
    """Whether the loop's time budget is spent (rank 0's clock decides for every rank)."""
    if not loop.seconds:
        return False
    used = selection.seconds + time.perf_counter() - mark - selection.phase_start
    return bool(distributed.broadcast_from_main(used >= loop.seconds))


def _stop_reason(loop: Loop, selection: Selection, update: int, out_of_time: bool) -> str:
    """Why the loop stops after this check ("" to go on)."""
    if update >= loop.updates:
        return ""
    if out_of_time:
        return (f"stopped at update {update} of {loop.updates} ({update / loop.eval_every:.1f} periods): "
                f"the time budget of {loop.seconds:.0f} s is spent")
    if loop.patience and selection.stale >= loop.patience:
        return (f"stopped at update {update} of {loop.updates} ({update // loop.eval_every} periods): "
                f"{selection.stale} checks without improvement")
    return ""


def best_update(history: list[dict], phase: str | None = None) -> int | None:
    """The update of the best scored check (of `phase` when given; the earliest of equal scores): what
    a refit on every playlist trains for. None when no check was scored."""
    checks = [h for h in history if (phase is None or h.get("phase") == phase)
              and h.get("val_r_precision") is not None and math.isfinite(h["val_r_precision"])]
    return max(checks, key=lambda h: (h["val_r_precision"], -h["update"]))["update"] if checks else None


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _check(loop: Loop, model: nn.Module, validate: Callable[[], dict] | None, selection: Selection, update: int,
           losses: list[float], mark: float) -> None:
    """Score on rank 0, share the score, keep the weights if R-precision improved (a NaN score
    counts only while nothing finite was scored: it must not displace weights that were)."""
    metrics = {"r_precision": float("nan")}
    if validate is not None and distributed.is_main():
        model.eval()
        with torch.no_grad():
            metrics = validate()
        model.train()
    release_free_memory()  # the updates' freed blocks, kept by the allocator, would add up over a phase
    metrics = distributed.broadcast_from_main(metrics) if validate is not None else metrics
    r = metrics["r_precision"]
    selection.seconds += time.perf_counter() - mark
    improved = validate is None or r > selection.best or (np.isnan(r) and not math.isfinite(selection.best))
    if improved:
        selection.best = r if not np.isnan(r) else selection.best
        selection.best_state = None  # the new copy is made after the old one goes: one model's size less at the peak
        selection.best_state, selection.best_tag, selection.stale = cpu_state(model), dict(loop.tag), 0
    else:
        selection.stale += 1
    selection.history.append(loop.tag | {"update": update, "loss": float(np.mean(losses)) if losses else None,
                                         "val_r_precision": r} | {f"val_{k}": v for k, v in metrics.items()
                                                                  if k != "r_precision"}
                             | {"improved": bool(improved), "seconds": round(selection.seconds, 2)})
    scored = (f"val R-precision {r:.4f}" + (f" NDCG {metrics['ndcg']:.4f}" if "ndcg" in metrics else "")
              if not np.isnan(r) else "not validated")
    log.info("%s update %d: loss %s, %s%s", loop.desc, update, f"{np.mean(losses):.2f}" if losses else "-", scored,
             " (kept)" if improved else "")


def _save(loop: Loop, model: nn.Module, optimizers: list[torch.optim.Optimizer], selection: Selection,
          update: int) -> None:
    """Atomically: weights, optimiser states, the selection (the best weights not stored twice when
    they are the current ones) and the update count."""
    current = selection.history[-1]["improved"]
    sel = dict(selection.__dict__, best_state=None if current else selection.best_state)
    weights = selection.best_state if current else cpu_state(model)  # a kept check was just copied
    with atomic_path(loop.checkpoint) as tmp:
        torch.save({"format": FORMAT, "key": loop.key, "update": update, "model": weights, "best_is_current": current,
                    "optimizers": [o.state_dict() for o in optimizers], "selection": sel}, tmp)


def finished(loop: Loop) -> Selection | None:
    """The selection a loop's checkpoint ended with when that loop had finished (every update trained,
    or stopped by patience): a resumed multi-phase run takes it and builds nothing for that phase.
    None when there is no such checkpoint (run() then starts or resumes the loop)."""
    blob = _checkpoint(loop, quiet=True)
    if blob is None:
        return None
    selection = Selection(**blob["selection"])
    if not (blob["update"] >= loop.updates or selection.stop_reason):
        return None
    if blob["best_is_current"]:
        selection.best_state = blob["model"]
    log.info("%s: finished before (update %d), taken from its checkpoint", loop.desc, blob["update"])
    return selection


def _checkpoint(loop: Loop, quiet: bool = False) -> dict | None:
    """The loop's checkpoint when it was written with this loop's key and format, else None."""
    if loop.checkpoint is None or not Path(loop.checkpoint).exists():
        return None
    try:
        blob = torch.load(loop.checkpoint, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError) as exc:
        if not quiet:
            log.warning("%s: unreadable checkpoint (%s); starting afresh", loop.checkpoint, exc)
        return None
    if blob.get("key") != loop.key or blob.get("format") != FORMAT:
        if not quiet:
            log.warning("%s: written with other settings or data; starting afresh", loop.checkpoint)
        return None
    return blob


def _resume(loop: Loop, model: nn.Module, optimizers: list[torch.optim.Optimizer], selection: Selection) -> int:
    """The update to start from: the checkpoint's when it was written with this loop's key, else 0."""
    blob = _checkpoint(loop)
    if blob is None:
        return 0
    model.load_state_dict(blob["model"])
    device = next(model.parameters()).device
    for opt, state in zip(optimizers, blob["optimizers"]):
        opt.load_state_dict(state)
        for st in opt.state.values():
            for name, v in st.items():
                if torch.is_tensor(v) and name != "step":
                    st[name] = v.to(device)
    saved = blob["selection"]
    selection.__dict__.update(saved)
    if blob["best_is_current"]:
        selection.best_state = blob["model"]
    log.info("%s: resuming at update %d", loop.desc, blob["update"])
    return int(blob["update"])


def drop_checkpoints(*paths: Path | None) -> None:
    """A finished model's checkpoints go (rank 0)."""
    if distributed.is_main():
        for path in paths:
            if path is not None:
                Path(path).unlink(missing_ok=True)
