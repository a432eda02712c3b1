#!/usr/bin/env bash
# Output error only: zkinfer and EZKL side by side in one run, against onnxruntime, on every
# model in ../shared/models (or those given). Faster than scripts/bench.sh (EZKL is not
# asked to prove: its output is its witness's); uses the zkinfer binary $ZKINFER (default
# target/debug/zkinfer, built here) and the venv of scripts/bench.sh (target/bench-venv).
# zkinfer compiles at its default settings, or with the flags in $COMPILE_ARGS.
#   [COMPILE_ARGS="--target accuracy"] scripts/bench-error.sh [MODEL ...]
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=($(ls ../shared/models/*.onnx | xargs -n1 basename | sed 's/\.onnx$//'))
PY=$(scripts/bench-venv.sh)
ZKINFER=${ZKINFER:-target/debug/zkinfer}
[ "$ZKINFER" != target/debug/zkinfer ] || cargo build -q --locked -p zkinfer
exec "$PY" scripts/bench_error.py "$ZKINFER" "${MODELS[@]}"
