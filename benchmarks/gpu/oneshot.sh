#!/usr/bin/env bash
# One shot on a CUDA machine: install the wheels that travel with the tree (.whl/), then
# calibrate + predict + measure + BGC Table 4 into one folder (default: $OUT or gpu_run).
#
#   bash benchmarks/gpu/oneshot.sh                      # on the GPU machine, from the repo root
#   DEVICE=cpu BUDGET_S=60 CAL_S=8 EXTRA="--image-size 64 --networks 2 --table4-channels 32" \
#       bash benchmarks/gpu/oneshot.sh /tmp/gpu_check   # the CPU check of the same script
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST="${1:-${OUT:-gpu_run}}"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
python3 benchmarks/gpu/run_all.py --device "${DEVICE:-cuda}" --out "$DEST" \
  --budget-s "${BUDGET_S:-480}" --calibrate-s "${CAL_S:-150}" --energy "${ENERGY:-auto}" ${EXTRA:-}
