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
cargo test --workspace --locked
