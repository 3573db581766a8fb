#!/usr/bin/env bash
# The pipeline check for a lent GPU machine: run.py with configs/gpu_check.toml (full_mpd's GPU
# stages on 20K synthetic playlists, the autoencoders over the whole catalogue), then the stage
# times, peak RSS and peak GPU memory. ~4 minutes of an H200 (bench/results/gpu_full.md).
#
#   bash bench/gpu_pipeline.sh [OUT_DIR] [CONFIG]   # OUT_DIR (default /tmp/gpu_pipeline) gets run/ and gpu_pipeline.md
#
# tests/test_bench_scripts.py runs it on CPU with configs/smoke.toml (DEVICE=cpu), so it is known to
# work before a GPU is at hand.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/tmp/gpu_pipeline}"
config="${2:-configs/gpu_check.toml}"
py="${PYTHON:-.venv/bin/python}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
gpu_log="$out/gpu_memory.csv"
: > "$gpu_log"
sampler=""
trap '[ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true' EXIT  # a failed run leaves no sampler behind
if command -v nvidia-smi >/dev/null 2>&1; then  # the whole process tree's GPU memory, every second
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -l 1 > "$gpu_log" 2>/dev/null &
  sampler=$!
fi
start=$(date +%s)
timeout "${LIMIT_S:-480}" "$py" run.py --config "$config" --out "$out/run" --device "${DEVICE:-auto}" > "$out/run.out"
wall=$(( $(date +%s) - start ))
[ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
{
  echo "## Whole pipeline, $config, device ${DEVICE:-auto}: $wall s"
  echo
  grep -E "stages: .* done in" "$out/run/run.log" | sed 's/.*stages: /- /'
  peak=$(sort -n "$gpu_log" | tail -1)
  echo "- peak GPU memory (nvidia-smi, whole device): ${peak:+$peak MiB}${peak:-no GPU}"
  echo
  cat "$out/run.out"
} | tee "$out/gpu_pipeline.md"
