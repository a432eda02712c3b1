#!/usr/bin/env bash
# What each visibility mode costs: compile, setup, prove and verify every model given
# (default mlp_mnist and lenet5) with every combination of --params/--input/--output,
# and print a markdown table (k, columns, public values, keygen, prove, verify, proof
# size). Timings are single runs of the release build on this machine.
#
#   scripts/bench-visibility.sh [MODEL ...]
#   COMBOS="fixed/public/public hashed/hashed/hashed" scripts/bench-visibility.sh lenet5
set -euo pipefail
cd "$(dirname "$0")/.."
M=../shared/models
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(mlp_mnist lenet5)
combos=${COMBOS:-}
if [ -z "$combos" ]; then
  for p in fixed hashed; do for i in public private hashed; do for o in public hashed; do
    combos="$combos $p/$i/$o"
  done; done; done
fi
cargo build -q --release -p zkinfer --locked
Z=target/release/zkinfer
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
secs() { grep -o "$1 [0-9.]* s" "$2" | head -1 | awk '{print $2}'; }
echo "| model | params | input | output | k | advice / fixed / lookups | public values | keygen s | prove s | verify s | proof bytes |"
echo "|---|---|---|---|---:|---|---:|---:|---:|---:|---:|"
for m in "${models[@]}"; do
  for c in $combos; do
    IFS=/ read -r p i o <<<"$c"
    d=$tmp/$m-$p-$i-$o
    $Z compile "$M/$m.onnx" --calibration "$M/$m.input.json" --out "$d" \
      --params "$p" --input "$i" --output "$o" >"$d.compile"
    $Z setup "$d" --dev-srs >"$d.setup" 2>/dev/null
    $Z prove "$d" --input "$M/$m.input.json" --proof "$d/proof.json" --engine cpu >"$d.prove" 2>/dev/null
    $Z verify "$d" --proof "$d/proof.json" >"$d.verify"
    grep -q '^valid' "$d.verify"
    k=$(awk '$1 == "k" {print $2}' "$d.compile")
    cols=$(grep -o '[0-9]* advice, [0-9]* fixed, [0-9]* lookups' "$d.compile" | awk '{print $1" / "$3" / "$5}')
    pub=$(grep -o '[0-9]* public values' "$d.compile" | awk '{print $1}')
    bytes=$(grep -o 'proof  *[0-9]* bytes' "$d.prove" | awk '{print $2}')
    echo "| $m | $p | $i | $o | $k | $cols | $pub | $(secs keygen "$d.setup") | $(secs prove "$d.prove") | $(secs verify "$d.verify") | $bytes |"
  done
done
