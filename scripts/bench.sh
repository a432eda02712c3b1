#!/usr/bin/env bash
# Side-by-side benchmark: zkinfer and EZKL on the same models, in the same run.
#   scripts/bench.sh [MODEL ...]      (default: mlp_tiny mlp_mnist)
# Builds zkinfer in release mode, installs EZKL into a private venv (target/bench-venv),
# and prints a markdown table (also written to target/bench/results.md).
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=(mlp_tiny mlp_mnist)
VENV=target/bench-venv
command -v /usr/bin/time >/dev/null || { echo "error: /usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import ezkl" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q ezkl==23.0.5
fi
cargo build --release --locked -p zkinfer
exec "$VENV/bin/python" scripts/bench.py "${MODELS[@]}"
