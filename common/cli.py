"""Entry-point wrapper: bad input ends with one line on stderr and exit code 2, never a traceback."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable

from common.errors import PipelineError
from common.progress import HideOnTerminal


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for handler in logging.getLogger().handlers:
        handler.addFilter(HideOnTerminal())
    try:
        code = main(argv)
    except PipelineError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except MemoryError:
        print("error: out of memory", file=sys.stderr)
        sys.exit(3)
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        sys.exit(2)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # a torchrun worker (torch is imported already)
        from common.distributed import leave_worker

        leave_worker(code or 0)
    sys.exit(code or 0)


def stage_parser(prog: str, description: str, stage_folder: str, device: bool = True) -> argparse.ArgumentParser:
    """The flags every model stage's command shares (run.py's folder layout), so the stages read
    alike and a new one cannot drift from them."""
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("--artifacts", required=True, help="folder written by python -m preprocess.build (RUN/artifacts)")
    ap.add_argument("--out", required=True, type=Path, help=f"the stage folder ({stage_folder})")
    ap.add_argument("--config", help="pipeline TOML (defaults without it)")
    if device:
        ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto = CUDA when present, else CPU (under torchrun: cuda:LOCAL_RANK)")
    return ap
