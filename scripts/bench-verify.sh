#!/usr/bin/env bash
# Verifying everywhere, per shared model: native verify time, the Solidity verifier in
# revm (contracts, code sizes, gas) and the wasm verifier in Node. Prints a markdown
# table for docs/BENCHMARKS.md. Needs target/release/zkinfer (cargo build --release),
# solc (scripts/install-solc.sh) and the wasm package (scripts/build-wasm.sh).
#   scripts/bench-verify.sh [MODEL...]      (default: every model in ../shared/models)
set -euo pipefail
cd "$(dirname "$0")/.."
Z=target/release/zkinfer
M=../shared/models
PKG=$PWD/target/wasm/pkg
models=${*:-$(ls $M/*.onnx | xargs -n1 basename | sed 's/\.onnx$//')}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "| model | public values | proof bytes | verify (native) | verify (wasm, Node) | EVM contracts | largest contract | all code | gas of the call | deployment gas |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for m in $models; do
  d=$work/$m
  $Z compile $M/$m.onnx --calibration $M/$m.input.json --out $d >/dev/null
  $Z setup $d --dev-srs >/dev/null 2>&1
  $Z prove $d --input $M/$m.input.json --proof $d/p.json --engine cpu >/dev/null 2>&1
  native=$($Z verify $d --proof $d/p.json | awk '/verify/ {print $3, $4}')
  wasm=$(node --input-type=module -e "
    import { readFileSync } from 'node:fs';
    const zk = await import('$PKG/zkinfer_verifier.js');
    zk.initSync({ module: readFileSync('$PKG/zkinfer_verifier_bg.wasm') });
    const vk = readFileSync('$d/vk'), p = readFileSync('$d/p.json', 'utf8');
    zk.verify(vk, p);
    const t = performance.now();
    if (!zk.verify(vk, p)) throw new Error('invalid');
    console.log(((performance.now() - t) / 1000).toFixed(3) + ' s');")
  read -r pub bytes < <(python3 -c "import json; p = json.load(open('$d/p.json')); print(len(p['instances']), len(p['proof']) // 2 - 1)")
  if evm=$($Z verify-evm $d --proof $d/p.json 2>&1); then
    gas=$(echo "$evm" | awk '/^  gas/ {print $2}')
    dgas=$(echo "$evm" | awk '/^  gas/ {gsub(/\)/, "", $7); print $7}')
    if echo "$evm" | grep -q "contracts,"; then
      read -r n all largest < <(echo "$evm" | awk '/code/ {print $2, $4, $9}')
    else
      n=1; all=$(echo "$evm" | awk '/code/ {print $2}'); largest=$all
    fi
    echo "| $m | $pub | $bytes | $native | $wasm | $n | $largest | $all | $gas | $dgas |"
  else
    echo "| $m | $pub | $bytes | $native | $wasm | — | — | — | not deployable: $(echo "$evm" | tail -1 | sed 's/^error: //') | |"
  fi
done
