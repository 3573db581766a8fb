"""Progress of long loops that reads well wherever the output goes.

On a terminal: a tqdm bar. Always: a log line on the "progress" logger every `every` seconds (count,
rate, ETA) and one at the end, so a run's log file shows how far each stage got; the console shows
those lines only when it is not a terminal (CI, nohup, a cluster job), where a bar would leave
carriage-return clutter (common.cli installs that filter).
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar("T")
log = logging.getLogger("progress")
EVERY_S = 30.0


def on_terminal() -> bool:
    return sys.stderr.isatty()


class Progress:
    """update() / set_postfix() / close(), like a tqdm bar; also a context manager."""

    def __init__(self, total: int | None, desc: str, unit: str = "it", initial: int = 0, disable: bool = False,
                 every: float = EVERY_S):
        self.total, self.desc, self.unit, self.n, self.disable, self.every = total, desc, unit, initial, disable, every
        self.start = self.last = time.perf_counter()
        self.first = initial
        self.postfix = ""
        self.bar = None
        if not disable and on_terminal():
            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=False, mininterval=1.0)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
        now = time.perf_counter()
        if not self.disable and now - self.last >= self.every:
            self.last = now
            log.info("%s: %s", self.desc, self._status(now))

    def set_postfix(self, **values: object) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())
        if self.bar is not None:
            self.bar.set_postfix(values)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if not self.disable and self.n > self.first:
            log.info("%s: done, %s", self.desc, self._status(time.perf_counter()))
        self.disable = True

    def _status(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = (self.n - self.first) / elapsed
        text = f"{self.n}" + (f"/{self.total}" if self.total else "") + f" {self.unit} in {elapsed:.0f} s ({rate:.2f}/s"
        if self.total and rate > 0 and self.n < self.total:
            text += f", ETA {(self.total - self.n) / rate:.0f} s"
        return text + ")" + (f", {self.postfix}" if self.postfix else "")

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it",
             disable: bool = False) -> Iterator[T]:
    """Iterate `items` with a Progress."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc, unit, disable=disable) as bar:
        for item in items:
            yield item
            bar.update()


class HideOnTerminal(logging.Filter):
    """For the console handler: progress lines are dropped while a bar shows the same thing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != log.name or not on_terminal()
