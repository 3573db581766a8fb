#!/usr/bin/env bash
# Both GPU checks in one lease of a lent GPU machine (15 minutes of device time, 1-2 of them to start
# it; one command may run 10): bench/gpu_full.sh (~4.5 min on an H200), then bench/gpu_pipeline.sh
# with configs/gpu_check.toml in what is left of BUDGET_S seconds. Everything a session reads back
# lands in OUT_DIR: gpu_full.md, gpu_pipeline.md, run.log, gpu_memory.csv.
#
#   bash bench/gpu_lease.sh OUT_DIR [CONFIG]      # on the device: bash bench/gpu_lease.sh "$OUT", carry [".whl"]
#
# The GPU image has torch, numpy, scipy, pandas and tqdm but not msgspec (the MPD reader's JSON
# parser): wheels in .whl/ are installed first. Fetch them once, on a machine with pip's index:
#   echo /.whl/ >> .git/info/exclude
#   .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 -d .whl msgspec==0.23.0
# BENCH_ARGS and DEVICE pass through to the two checks. WORK names the run's folder (default: a new
# temporary one); a finished run there is resumed, its stages skipped: tests/test_bench_scripts.py runs
# this on CPU against a copy of its smoke run, so that it pays for the pipeline once per session.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: bash bench/gpu_lease.sh OUT_DIR [CONFIG]}"
config="${2:-configs/gpu_check.toml}"
budget="${BUDGET_S:-560}"
start=$(date +%s)
mkdir -p "$out"
source bench/torch_python.sh  # sets py
if ! "$py" -c "import msgspec" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "error: .whl: the carried wheels did not install" >&2; exit 2; }
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
"$py" -c "import msgspec" 2>/dev/null || { echo "error: $py has no msgspec: carry it in .whl (see above)" >&2; exit 2; }
export PYTHON="$py"
BENCH_ARGS="${BENCH_ARGS:---updates 100}" bash bench/gpu_full.sh "$out" > /dev/null
rc_full=$?
echo "gpu_full: exit $rc_full, $(( $(date +%s) - start )) s"
left=$(( budget - ($(date +%s) - start) ))
work="${WORK:-$(mktemp -d)}"  # the run stays here: only the reports go to OUT_DIR, whose files come back
if [ "$left" -ge 30 ]; then
  LIMIT_S="$left" bash bench/gpu_pipeline.sh "$work" "$config" > /dev/null
  rc_pipe=$?
  echo "gpu_pipeline: exit $rc_pipe (124: cut at $left s), $(( $(date +%s) - start )) s"
else
  rc_pipe=124
  echo "gpu_pipeline: skipped, $left s of the budget left"
fi
for f in "$work/gpu_pipeline.md" "$work/run/run.log" "$work/gpu_memory.csv"; do
  if [ -f "$f" ]; then cp "$f" "$out/"; fi
done
grep -E "stages: .* done in" "$out/run.log" 2>/dev/null | sed 's/.*stages: /- /'
# a pipeline cut by the budget still reports its finished stages; any other failure fails the lease's script
[ "$rc_full" -eq 0 ] && { [ "$rc_pipe" -eq 0 ] || [ "$rc_pipe" -eq 124 ]; }
