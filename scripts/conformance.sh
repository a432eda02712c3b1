#!/usr/bin/env bash
# The onnx package's backend node tests for every supported operator (issue 16):
#   scripts/conformance.sh [FILTER]
# Installs onnx into a private venv (target/onnx-venv), builds the runner in release mode
# and prints one line per test (the reason of each failure), pass / tests per operator,
# and pass / total. See tests/examples/conformance.rs for what "pass" means.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/onnx-venv
if ! "$VENV/bin/python" -c "import onnx" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q onnx==1.17.0
fi
NODE=$("$VENV/bin/python" -c "import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), 'backend/test/data/node'))")
cargo build -q --release --locked -p zkinfer-tests --example conformance
exec target/release/examples/conformance "$NODE" "$@"
