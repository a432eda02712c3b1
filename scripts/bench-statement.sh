#!/usr/bin/env bash
# What binding the whole statement costs (issue 13), measured side by side: the zkinfer
# binary given as BASE (an earlier build) against this checkout's release build, in one
# run, on the same inputs.
#  - private and hashed inputs are range-checked in the circuit (one element-wise row
#    per input element): rows, k, keygen and prove time per model and input mode;
#  - the Solidity verifier checks that public values are canonical and the input in
#    range: gas of the verifying call.
#
#   scripts/bench-statement.sh BASE [MODEL ...]   (default models: mlp_mnist lenet5 cnn_cifar)
# BASE is a zkinfer binary, e.g. built from an earlier commit (the models are read from
# ../shared beside this checkout):
#   git worktree add /tmp/base 7616668 && (cd /tmp/base && cargo build --release -p zkinfer)
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=$(realpath "$1"); shift
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(mlp_mnist lenet5 cnn_cifar)
M=../shared/models
cargo build -q --release -p zkinfer --locked
NEW=target/release/zkinfer
scripts/install-solc.sh
# Both builds compile their verifiers with this checkout's solc-js (or the solc given).
export ZKINFER_SOLC=${ZKINFER_SOLC:-$PWD/scripts/solc/solc.js}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
secs() { grep -o "$1 [0-9.]* s" "$2" | head -1 | awk '{print $2}'; }
echo "| model | input | build | k | element-wise rows | rows used | keygen s | prove s |"
echo "|---|---|---|---:|---:|---:|---:|---:|"
for m in "${models[@]}"; do
  for i in private hashed; do
    for b in base new; do
      Z=$BASE; [ $b = new ] && Z=$NEW
      d=$tmp/$m-$i-$b
      $Z compile "$M/$m.onnx" --calibration "$M/$m.input.json" --out "$d" --input "$i" >"$d.compile"
      $Z setup "$d" --dev-srs >"$d.setup" 2>/dev/null
      $Z prove "$d" --input "$M/$m.input.json" --proof "$d/proof.json" --engine cpu >"$d.prove" 2>/dev/null
      $Z verify "$d" --proof "$d/proof.json" 2>/dev/null | grep -q '^valid'
      k=$(awk '$1 == "k" {print $2}' "$d.compile")
      ew=$(grep -o 'element-wise [0-9]*' "$d.compile" | awk '{print $2}')
      used=$(grep -o 'rows *[0-9]* used' "$d.compile" | awk '{print $2}')
      echo "| $m | $i | $b | $k | $ew | $used | $(secs keygen "$d.setup") | $(secs prove "$d.prove") |"
    done
  done
done
echo
echo "| model | public values | build | EVM gas of the call |"
echo "|---|---:|---|---:|"
for m in mlp_tiny "${models[@]}"; do
  [ "$m" = cnn_cifar ] && continue  # 43 contracts, over the per-transaction gas cap either way
  for b in base new; do
    Z=$BASE; [ $b = new ] && Z=$NEW
    d=$tmp/$m-evm-$b
    $Z compile "$M/$m.onnx" --calibration "$M/$m.input.json" --out "$d" >/dev/null
    $Z setup "$d" --dev-srs >/dev/null 2>&1
    $Z prove "$d" --input "$M/$m.input.json" --proof "$d/proof.json" --engine cpu >/dev/null 2>&1
    $Z verify-evm "$d" --proof "$d/proof.json" >"$d.evm" 2>/dev/null
    grep -q '^accepted' "$d.evm"
    pub=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["instances"]))' "$d/proof.json")
    echo "| $m | $pub | $b | $(grep -o 'gas *[0-9]*' "$d.evm" | awk '{print $2}') |"
  done
done
