#!/usr/bin/env bash
# Creates .venv with the locked requirements (requirements.lock; torch==2.13.0 CPU build unless a CUDA one is already there).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock
