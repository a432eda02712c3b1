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
# The workspace includes the GPU build `zkinfer-cuda`: its kernels compile with CUDA from
# PyPI. One `cargo test --workspace` builds it with the rest, sharing every dependency;
# gpu/tests/auto.rs checks that on this machine (no GPU) `--engine auto` says why and
# falls back to the CPU even when the GPU build is installed.
. scripts/cuda-env.sh
# solc-js (npm) for the EVM tests, unless a native solc is on PATH.
scripts/install-solc.sh
# Clippy's lints run in the build of the tests (scripts/clippy-driver.sh): one pass over
# the workspace instead of `cargo clippy --workspace --all-targets -- -D warnings` and
# then a build; a lint fails the build.
RUSTC_WORKSPACE_WRAPPER=$PWD/scripts/clippy-driver.sh cargo test --workspace --locked
if readelf -d target/debug/zkinfer-cuda | grep -q libcudart; then
  echo "error: zkinfer-cuda links libcudart dynamically; expected the static runtime" >&2
  exit 1
fi

# Fuzz smoke run: proof files, verifying keys and compiled circuits never panic. The seeds
# are made with the zkinfer binary `cargo test` built (the CLI tests use it).
scripts/fuzz.sh 8 target/debug/zkinfer

# The WebAssembly verifier in Node and in headless Chromium, on every shared model.
scripts/test-wasm.sh target/debug/zkinfer
