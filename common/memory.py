"""The process's resident memory: its peak per stage, and handing freed memory back to the system.

Why the hand-back: glibc keeps memory that numpy and torch free (its threshold for serving large
blocks from the heap rises after the first big free), so a stage inherits the RSS of everything
the stages before it freed, and a training loop's RSS creeps by a few MB an update. At 100K
playlists that was 1.5-2.5 GB of a stage's logged peak; malloc_trim returns over 90% of it.
"""
from __future__ import annotations

import ctypes
import functools


def reset_peak_rss() -> None:
    """Start a new peak-RSS window for this process (Linux: clear_refs 5 resets VmHWM), so that each
    stage of one run.py process reports its own peak; elsewhere the peak stays cumulative."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float | None:
    """This process's peak resident memory since the last reset, in MB (worker processes not included)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def release_free_memory() -> None:
    """Return the allocator's free memory to the system (glibc's malloc_trim; elsewhere nothing)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
