#!/usr/bin/env bash
# Aggregation (issue 18), end to end on two cores: mlp_tiny cut into two segments, each
# proven with the Poseidon transcript, folded by the aggregation circuit (k 21), the
# aggregated proof verified natively and by one contract in revm with its gas, and its
# aggregation key checked to be the committed fixture's (tests/fixtures/aggregate, which
# the test command verifies natively, in wasm and in the EVM, and whose cheats it
# refuses). The test command runs the same tests but one; this script runs them all
# alone, with their timings printed, for docs/BENCHMARKS.md: with the `--ignored` one,
# which makes afresh the two committed aggregation keys the test command reads without
# making them (the one circuit's and the tree's second leaf's; ~7 minutes more).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-solc.sh
cargo test --locked --test aggregate -- --include-ignored --nocapture --test-threads 3
