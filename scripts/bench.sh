#!/usr/bin/env bash
# Side-by-side benchmark: zkinfer and EZKL on the same models, in the same run.
#   scripts/bench.sh [MODEL ...]      (default: every model in ../shared/models)
# Builds zkinfer in release mode, installs EZKL and onnxruntime (the float reference for
# both tools' output error) into a private venv (target/bench-venv), and prints markdown
# tables (also written to target/bench/results.md): both tools side by side, and the cost
# model's predictions against the measurements. EZKL is not run on a model for which it
# chooses more than 2^EZKL_MAX_LOGROWS rows (default 20; its memory grows with them).
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=($(ls ../shared/models/*.onnx | xargs -n1 basename | sed 's/\.onnx$//'))
PY=$(scripts/bench-venv.sh)
cargo build --release --locked -p zkinfer
exec "$PY" scripts/bench.py "${MODELS[@]}"
