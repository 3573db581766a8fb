#!/usr/bin/env bash
# One prepared check for a lent GPU machine: speed and memory at the full MPD's dimensions
# (bench/bench_gpu_full.py: every DAE scheme and phase in bf16 and fp32, prediction of 10,000
# challenge-like playlists to a top 500, title-model updates). Random data, built in ~1 min;
# the whole run is ~3-4 min on one H100 and must stay under 8. Needs only torch, numpy, scipy
# and tqdm, which the GPU image's python3 has.
#
#   bash bench/gpu_full.sh [OUT_DIR]        # OUT_DIR (default bench/results) gets gpu_full.md
#
# Extra arguments for a quick look elsewhere go through BENCH_ARGS, e.g.
#   BENCH_ARGS="--scale 0.01 --updates 20 --device cpu" bash bench/gpu_full.sh /tmp
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench/results}"
mkdir -p "$out"
source bench/torch_python.sh  # sets py
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-8}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
# shellcheck disable=SC2086  # BENCH_ARGS is a list of arguments
timeout 480 "$py" bench/bench_gpu_full.py ${BENCH_ARGS:-} | tee "$out/gpu_full.md"
