#!/usr/bin/env bash
# The peer-comparison venv shared by scripts/bench.sh and scripts/bench-error.sh:
# target/bench-venv with EZKL 23.0.5 and onnxruntime 1.20.1 (the float reference for both
# tools' output error), made on first use. Prints its python.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/bench-venv
command -v /usr/bin/time >/dev/null || { echo "error: /usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import ezkl, onnxruntime" 2>/dev/null; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q ezkl==23.0.5 onnxruntime==1.20.1 >&2
fi
echo "$PWD/$VENV/bin/python"
