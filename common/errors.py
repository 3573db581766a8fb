"""One exception type for bad input; CLIs turn it into a one-line message and a non-zero exit."""
from __future__ import annotations


class PipelineError(Exception):
    """Bad input or environment. The message names the file and the problem, on one line."""
