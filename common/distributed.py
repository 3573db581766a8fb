"""Data-parallel training over the processes `torchrun` starts (one per GPU, or several on a CPU).

The contract both training loops follow: every rank draws the *same* global batch from the same
seeded generators (rows, corruption, dropout masks), keeps its `shard` of the rows, and computes
its share of the gradient of the global-batch mean loss (its local mean times n_local / B). The
shares are summed with all_reduce, so the update is the one-process update of the same batch up
to float summation order, and the loss curve is the one-process curve. Both models compute their
big dense layer's gradient by hand, outside autograd, where DistributedDataParallel's hooks never
see it; those gradients are summed by `all_reduce_grads`. The title model's autograd encoder
goes through DDP (`wrap_ddp`), with a comm hook that sums in the same way.

Rank 0 alone validates, selects and writes files; the decisions reach the others by
`broadcast_from_main`. Without torchrun (no WORLD_SIZE, or WORLD_SIZE=1) nothing is
initialised and every helper is a no-op for rank 0 of 1.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any, Iterable, Iterator, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from common.errors import PipelineError

T = TypeVar("T")


def init(device: torch.device) -> torch.device:
    """Join torchrun's process group (NCCL on CUDA, else gloo) and return this rank's device:
    cuda:LOCAL_RANK on CUDA. Non-main ranks log warnings only, so progress is printed once."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or active():
        return device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "gloo"
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise PipelineError(f"LOCAL_RANK {local}: only {torch.cuda.device_count()} CUDA device(s) visible; "
                                f"start at most that many processes per node")
        device, backend = torch.device("cuda", local), "nccl"
        torch.cuda.set_device(device)
    dist.init_process_group(backend)
    if not is_main():
        logging.getLogger().setLevel(logging.WARNING)
    return device


def cleanup() -> None:
    if active():
        dist.destroy_process_group()


@contextlib.contextmanager
def session(device: torch.device) -> Iterator[torch.device]:
    """`init` for the length of a block (a CLI's training run), then leave the group together
    (a barrier), so no rank tears its connections down while rank 0 still finishes its own work.
    After an error there is no barrier: torchrun stops the other ranks."""
    try:
        yield init(device)
        if active():
            dist.barrier()
    finally:
        cleanup()


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    return rank() == 0


def bounds(n: int, rank_: int, world: int) -> tuple[int, int]:
    """Rows [lo, hi) of an n-row batch that rank `rank_` of `world` takes: contiguous, sizes
    differing by at most one, so batch sizes need not divide by the number of processes."""
    if n < world:
        raise PipelineError(f"a batch of {n} rows cannot be split over {world} processes; raise the batch size")
    return rank_ * n // world, (rank_ + 1) * n // world


def shard(n: int) -> tuple[int, int]:
    """This process's rows [lo, hi) of an n-row global batch ([0, n) without torchrun)."""
    return bounds(n, rank(), world_size())


def all_reduce_grads(params: Iterable[nn.Parameter], weight: float = 1.0) -> None:
    """grad <- sum over ranks of weight * grad (weight = n_local / B turns local means into the
    global mean). Without torchrun the gradients are left as they are."""
    if not active():
        return
    for p in params:
        if p.grad is not None:
            if weight != 1.0:
                p.grad.mul_(weight)
            dist.all_reduce(p.grad)


def all_reduce_loss(loss: float, weight: float) -> float:
    """The global-batch mean of a loss each rank computed as its local mean (weight = n_local / B)."""
    if not active():
        return loss
    t = torch.tensor([loss * weight], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return float(t.item())


def broadcast_from_main(obj: T) -> T:
    """Rank 0's value of a small picklable object (a validation score), on every rank."""
    if not active():
        return obj
    box: list[Any] = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_params(module: nn.Module) -> None:
    """Overwrite every rank's weights with rank 0's (what DDP does at construction): ranks must
    start from identical weights for identical updates to keep them identical."""
    if not active():
        return
    with torch.no_grad():
        for t in module.state_dict().values():
            dist.broadcast(t, src=0)


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """The module under DistributedDataParallel, its gradients summed rather than averaged (the
    losses are already scaled to each rank's share); the module itself without torchrun."""
    if not active():
        return module
    ddp = DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None)
    ddp.register_comm_hook(None, _sum_hook)
    return ddp


def _sum_hook(_state, bucket):  # noqa: ANN001, ANN202: DDP rejects string annotations (postponed evaluation)
    """DDP comm hook (state: None; bucket: dist.GradBucket): sum the bucket over the processes."""
    return dist.all_reduce(bucket.buffer(), async_op=True).get_future().then(lambda fut: fut.value()[0])


def _comm_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def leave_worker(code: int) -> None:
    """A worker process whose work is done and whose process group is destroyed leaves without the
    interpreter's teardown: gloo's threads meeting that teardown can abort the process ("terminate
    called without an active exception": 2 of 8 two-process runs on a loaded 2-core machine before,
    none of 10 after), and torchrun then stops the other workers too."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
