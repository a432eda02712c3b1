#!/usr/bin/env bash
# The wasm verifier's tests: builds the package (scripts/build-wasm.sh), proves every
# shared model with the zkinfer binary given as $1 (default target/debug/zkinfer), lenet5
# with each linear argument (dot products, Freivalds' two-phase circuit), attn_block with
# Freivalds' argument (its products of two activations too), and
# a capability certificate of 10 digits test images, the aggregated proof of
# tests/fixtures/aggregate (scripts/make-aggregate-fixture.sh) and the tree of
# aggregations of tests/fixtures/aggregate-tree, and
# mlp_tiny with every part of the statement hashed, and mlp_tiny set up from a snarkjs
# powers-of-tau file (scripts/ptau/make-ptau.sh), then
# runs Node's test runner: the package in Node, and examples/web in headless Chromium
# (Debian's chromium package, installed when missing; playwright-core from npm drives it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ZKINFER=${1:-target/debug/zkinfer}
M=../shared/models

scripts/build-wasm.sh
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing Debian's chromium (for the browser test)"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
fi
(cd verifier/wasm/tests && npm ci --no-audit --no-fund --loglevel=error)

proofs=$(mktemp -d)
trap 'rm -rf "$proofs"' EXIT
for model in $(ls $M/*.onnx | xargs -n1 basename | sed 's/\.onnx$//'); do
  echo "== proving $model"
  dir=$proofs/$model
  "$ZKINFER" compile "$M/$model.onnx" --calibration "$M/$model.input.json" --out "$dir" >/dev/null
  "$ZKINFER" setup "$dir" --dev-srs >/dev/null 2>&1
  "$ZKINFER" prove "$dir" --input "$M/$model.input.json" --proof "$dir/proof.json" --engine cpu >/dev/null 2>&1
  rm -f "$dir/pk" "$dir/srs"
done
# attn_block's Freivalds circuit checks its products of two activations under a second
# challenge.
for run in lenet5:dot lenet5:freivalds attn_block:freivalds; do
  model=${run%%:*} linear=${run#*:}
  echo "== proving $model with --linear $linear"
  dir=$proofs/$model-$linear
  "$ZKINFER" compile "$M/$model.onnx" --calibration "$M/$model.input.json" --out "$dir" \
    --linear $linear >/dev/null
  "$ZKINFER" setup "$dir" --dev-srs >/dev/null 2>&1
  "$ZKINFER" prove "$dir" --input "$M/$model.input.json" --proof "$dir/proof.json" --engine cpu >/dev/null 2>&1
  rm -f "$dir/pk" "$dir/srs"
done
echo "== proving mlp_tiny with hashed weights, input and output"
dir=$proofs/mlp_tiny-hashed
"$ZKINFER" compile "$M/mlp_tiny.onnx" --calibration "$M/mlp_tiny.input.json" --out "$dir" \
  --params hashed --input hashed --output hashed >/dev/null
"$ZKINFER" setup "$dir" --dev-srs >/dev/null 2>&1
"$ZKINFER" prove "$dir" --input "$M/mlp_tiny.input.json" --proof "$dir/proof.json" --engine cpu >/dev/null 2>&1
rm -f "$dir/pk" "$dir/srs"
echo "== proving mlp_tiny (8-bit) with keys from a snarkjs powers-of-tau file"
scripts/ptau/make-ptau.sh target/ptau/pot10.ptau 10
dir=$proofs/mlp_tiny-ptau
"$ZKINFER" compile "$M/mlp_tiny.onnx" --calibration "$M/mlp_tiny.input.json" --out "$dir" --bits 8 >/dev/null
"$ZKINFER" setup "$dir" --srs target/ptau/pot10.ptau >/dev/null
"$ZKINFER" prove "$dir" --input "$M/mlp_tiny.input.json" --proof "$dir/proof.json" --engine cpu >/dev/null 2>&1
rm -f "$dir/pk" "$dir/srs"
echo "== proving attn_block (8-bit) cut into 3 linked segments"
bundle=$(mktemp -d)
trap 'rm -rf "$proofs" "$bundle"' EXIT
"$ZKINFER" compile "$M/attn_block.onnx" --calibration "$M/attn_block.input.json" --out "$bundle" \
  --bits 8 --segments 3 >/dev/null
"$ZKINFER" setup "$bundle" --dev-srs >/dev/null 2>&1
"$ZKINFER" prove "$bundle" --input "$M/attn_block.input.json" --proof "$bundle/bundle.json" \
  --engine cpu --jobs 2 >/dev/null 2>&1
rm -f "$bundle"/segment-*/pk "$bundle"/segment-*/srs
cert=$(mktemp -d)
trap 'rm -rf "$proofs" "$bundle" "$cert"' EXIT
# cli/tests/certificate.rs certifies the same 10 images with the same circuit: where this
# binary's `cargo test` left that certificate (after building it), it is verified here
# rather than proven twice.
made=target/tmp/certificate
if [ "$made/cert.json" -nt "$ZKINFER" ] && [ -f "$made/digits/vk" ]; then
  echo "== the certificate of 10 digits test images the CLI tests made ($made)"
  cp "$made/digits/vk" "$cert/vk"
  cp "$made/cert.json" "$cert/certificate.json"
else
  echo "== certifying 10 digits test images with the digits MLP's certificate circuit (batches of 5)"
  R=$M/real
  "$ZKINFER" compile "$R/digits_mlp.onnx" --calibration "$R/digits_mlp.calibration.json" \
    --out "$cert" --certify 5 >/dev/null
  "$ZKINFER" setup "$cert" --dev-srs >/dev/null 2>&1
  node -e 'const fs = require("fs"); const d = JSON.parse(fs.readFileSync(process.argv[1]));
    fs.writeFileSync(process.argv[2], JSON.stringify({input_data: d.input_data.slice(0, 10), labels: d.labels.slice(0, 10)}));' \
    "$R/digits_test.json" "$cert/ten.json"
  "$ZKINFER" certify "$cert" --dataset "$cert/ten.json" --out "$cert/certificate.json" >/dev/null 2>&1
  rm -f "$cert/pk" "$cert/srs"
fi
ZKINFER_WASM_PKG=$ROOT/target/wasm/pkg ZKINFER_PROOFS=$proofs ZKINFER_BUNDLE=$bundle ZKINFER_CERTIFICATE=$cert \
  ZKINFER_AGGREGATE=$ROOT/tests/fixtures/aggregate node --test --test-reporter=spec verifier/wasm/tests/
# The same segments folded by a tree of aggregations (tests/fixtures/aggregate-tree,
# committed; tests/aggregate.rs checks it is what the code makes and remakes it).
echo "== the tree of aggregations (tests/fixtures/aggregate-tree)"
ZKINFER_WASM_PKG=$ROOT/target/wasm/pkg ZKINFER_AGGREGATE=$ROOT/tests/fixtures/aggregate-tree \
  node --test --test-reporter=spec verifier/wasm/tests/aggregate.test.mjs
