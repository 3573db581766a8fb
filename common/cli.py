"""Entry-point wrapper: bad input ends with one line on stderr and exit code 2, never a traceback."""
from __future__ import annotations

import logging
import os
import sys
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
