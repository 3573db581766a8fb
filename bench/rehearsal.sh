#!/usr/bin/env bash
# Scale rehearsal on CPU: synthetic MPD of N playlists -> local challenge set (10 x PER) -> every
# stage of run.py with bench/rehearsal.toml. Prints wall time and peak RSS per step; run.py's log
# has each stage's own wall time and peak RSS ("done in ... peak RSS ...").
#   bash bench/rehearsal.sh 100000 /tmp/reh100k        # then 1000000 /tmp/reh1m
set -euo pipefail
N=${1:?playlists}; WORK=${2:?work folder}; PER=${PER:-1000}
PY=${PY:-.venv/bin/python}
mkdir -p "$WORK"
step() {  # name, command...: wall and peak RSS (largest process) of one step
  local name=$1; shift
  /usr/bin/time -f "$name: %e s wall, %M KB peak RSS (largest process)" -a -o "$WORK/steps.txt" "$@"
}
[ -d "$WORK/mpd" ] || step synthetic $PY -m preprocess.synthetic --out "$WORK/mpd" --playlists "$N"
[ -f "$WORK/local/truth.json" ] || step challenge $PY -m preprocess.challenge --mpd "$WORK/mpd" --out "$WORK/local" --per-category "$PER"
step run.py $PY run.py --mpd "$WORK/local/train" --challenge "$WORK/local/challenge_set.json" \
  --truth "$WORK/local/truth.json" --out "$WORK/run" --config bench/rehearsal.toml > "$WORK/run.out" 2> "$WORK/run.err"
cat "$WORK/steps.txt"
grep -E "stages: .* done in" "$WORK/run/run.log" | sed 's/.*stages: /  /'
