# Sourced by the GPU check scripts (bench/gpu_full.sh, bench/gpu_lease.sh): sets py to a python that
# has torch: $PYTHON, else the GPU image's python3, else this repo's .venv (where python3 has none).
py="${PYTHON:-}"
for cand in python3 .venv/bin/python; do
  [ -n "$py" ] && break
  "$cand" -c "import torch" 2>/dev/null && py="$cand"
done
[ -n "$py" ] || { echo "error: no python with torch (set PYTHON=...)" >&2; exit 2; }
