#!/usr/bin/env bash
# The test command's compiler for the workspace's own crates (RUSTC_WORKSPACE_WRAPPER):
# clippy-driver is rustc with clippy's lints, so the one build that makes the test
# binaries also lints every target (lib, bins, tests, examples; build scripts), with
# every warning an error — what `cargo clippy --workspace --all-targets -- -D warnings`
# checks, without a second pass over every crate in check mode (~4 to 8 minutes on two
# cores). Dependencies are compiled by plain rustc, as under `cargo clippy`. Cargo
# passes rustc's path first, which clippy-driver expects; its queries (`-vV`,
# `--print`) pass through unchanged.
case " $* " in
  *" --crate-name "*) exec clippy-driver "$@" -D warnings ;;
  *) exec clippy-driver "$@" ;;
esac
