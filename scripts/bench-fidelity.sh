#!/usr/bin/env bash
# How faithful the quantized models are, and what --target chooses: compiles every shared
# model (or those given) at the default 12 bits, with --target size and with --target
# accuracy, and prints a markdown table of k and the output error against the float model
# on the model's input file.
#
#   scripts/bench-fidelity.sh [MODEL ...]
set -euo pipefail
cd "$(dirname "$0")/.."
M=../shared/models
models=("$@")
[ ${#models[@]} -gt 0 ] || models=($(ls $M/*.onnx | xargs -n1 basename | sed 's/\.onnx$//'))
cargo build -q --release -p zkinfer --locked
Z=target/release/zkinfer
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| model | setting | bits | k | max abs error | mean abs error | output range | argmax |"
echo "|---|---|---:|---:|---:|---:|---:|---|"
for m in "${models[@]}"; do
  for setting in "--bits 12" "--target size" "--target accuracy"; do
    # shellcheck disable=SC2086
    $Z compile "$M/$m.onnx" --calibration "$M/$m.input.json" --out "$tmp/$m" $setting \
      >"$tmp/log" 2>/dev/null
    read -r k bits < <(sed -n 's/^  k *\([0-9]*\) (\([0-9]*\)-bit activations)$/\1 \2/p' "$tmp/log")
    f=$(sed -n 's/^  fidelity  //p' "$tmp/log")
    max=$(sed -n 's/max |error| \([0-9.]*\),.*/\1/p' <<<"$f")
    mean=$(sed -n 's/.*mean |error| \([0-9.]*\) .*/\1/p' <<<"$f")
    range=$(sed -n 's/.*output range \(±[0-9.]*\),.*/\1/p' <<<"$f")
    arg=$(sed -n 's/.*argmax agrees on \([0-9/]*\).*/\1/p' <<<"$f")
    echo "| $m | \`$setting\` | $bits | $k | $max | $mean | $range | ${arg:-– (not a class vector)} |"
  done
done
