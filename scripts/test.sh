#!/usr/bin/env bash
# The test command: formatting, lints, then every test of the workspace.
# Dependencies are optimised even in the test profile (see Cargo.toml), so real proofs
# run in seconds on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d ../shared/models ]; then
  echo "error: ../shared/models not found (the reference models live beside the checkout)" >&2
  exit 2
fi
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# solc-js (npm) for the EVM tests, unless a native solc is on PATH.
scripts/install-solc.sh
cargo test --workspace --locked

# Fuzz smoke run: proof files, verifying keys and compiled circuits never panic. The seeds
# are made with the zkinfer binary `cargo test` built (the CLI tests use it).
scripts/fuzz.sh 8 target/debug/zkinfer

# The WebAssembly verifier in Node and in headless Chromium, on every shared model.
scripts/test-wasm.sh target/debug/zkinfer

# The GPU build must keep building (it cannot rot), and on this machine — no GPU —
# `--engine auto` must fall back to the CPU with a notice even when it is installed.
scripts/build-gpu.sh --dev
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
M=../shared/models
target/debug/zkinfer compile $M/mlp_tiny.onnx --calibration $M/mlp_tiny.input.json --out "$tmp/m" >/dev/null
target/debug/zkinfer setup "$tmp/m" --dev-srs >/dev/null 2>&1
ZKINFER_CUDA=target/debug/zkinfer-cuda target/debug/zkinfer prove "$tmp/m" --input $M/mlp_tiny.input.json \
  --proof "$tmp/p.json" --engine auto >/dev/null 2>"$tmp/err"
grep -q "note: proving on the CPU: no usable GPU" "$tmp/err"
target/debug/zkinfer verify "$tmp/m" --proof "$tmp/p.json" >/dev/null
echo "gpu build: 1 passed, 0 failed"
