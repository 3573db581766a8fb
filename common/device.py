"""The torch device an entry point asked for."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from common.errors import PipelineError


def resolve_device(name: str | torch.device) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without it is an error, not a silent fallback."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise PipelineError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise PipelineError(f"--device: expected auto, cpu or cuda, got {name!r}")
    return torch.device(name)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to n while training (0: leave them), restored after: a stage's
    setting must not leak into the stages that run after it in the same process."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
