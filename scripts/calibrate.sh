#!/usr/bin/env bash
# Fits the cost model's constants (circuits/src/cost.rs) to proofs measured on this
# machine: compiles, sets up and proves each shared model at several activation widths
# and visibilities, then prints the fitted constants and a table of measured vs
# predicted prove time and peak memory (with the constants compiled in).
#   scripts/calibrate.sh [--refit]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "error: /usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
cargo build -q --release --locked -p zkinfer
exec python3 scripts/calibrate.py "$@"
