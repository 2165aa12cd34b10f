#!/usr/bin/env bash
# One sitting of a learning-curve run (issue 31): the served Lagrangian ConvLSTM trained from
# its zero start on a share of the training blocks of ../shared/data/radar and
# ../shared/data/archives (the same validation windows for every share).
#   research/learning-curve/train.sh 0.1 [MINUTES]     a new run, or the next sitting of it
# Writes research/learning-curve/f<share>/ : convlstm.safetensors (the best on validation),
# convlstm.resume.pt (the whole state, every --eval-every-min and on SIGTERM), history, log.
set -euo pipefail
cd "$(dirname "$0")/../.."
share=${1:?usage: train.sh SHARE [MINUTES]}
minutes=${2:-90}
name=$(printf 'f%03d' "$(python3 -c "print(round($share * 100))")")
out=research/learning-curve/$name
mkdir -p "$out"
# TAASRAD19: 64 x 64 cells of 3.75 km brought to the input by cell size; 0 dBZ is its "no echo"
export NOWCAST_SITES='{"taasrad19-trentino-5min-64px": {"cell_km": 3.75, "no_echo_dbz": 0, "cadence_min": 5}, "dpc-italy-north-10min-2025": {"cadence_min": 10}}'
resume=()
[ -f "$out/convlstm.resume.pt" ] && resume=(--resume "$out/convlstm.resume.pt")
exec .venv/bin/nowcast train ../shared/data/radar ../shared/data/archives \
  --arch convlstm --train-fraction "$share" --validation-stride 12 \
  --max-minutes "$minutes" --eval-every-min 10 \
  --out "$out/convlstm.safetensors" --log-dir "$out" "${resume[@]}" \
  >>"$out/train.log" 2>&1
