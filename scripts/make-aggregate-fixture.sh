#!/usr/bin/env bash
# Makes tests/fixtures/aggregate: mlp_tiny (8-bit) cut into 2 segments planned for folding
# (`compile --aggregate`), proven and folded into one aggregated proof at k 21 with the
# development SRS (~6 minutes and ~13 GB on two cores), kept as the files a verifier reads: the segments' verifying keys, the
# aggregation verifying key, the segment manifest and the aggregated proof. The test
# command verifies them natively, in wasm and in the EVM (aggregating in CI would take
# ~10 of its minutes). Rerun after a change to the circuits or the key formats
# (the fixture's tests then fail: the keys no longer read or verify).
set -euo pipefail
cd "$(dirname "$0")/.."
ZKINFER=${1:-target/debug/zkinfer}
M=../shared/models
OUT=tests/fixtures/aggregate
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$ZKINFER" compile "$M/mlp_tiny.onnx" --calibration "$M/mlp_tiny.input.json" --out "$work/m" \
  --bits 8 --segments 2 --aggregate
"$ZKINFER" setup "$work/m" --dev-srs
/usr/bin/time -v "$ZKINFER" aggregate "$work/m" --input "$M/mlp_tiny.input.json" \
  --proof "$work/aggregate.json" --dev-srs 2> "$work/time" || { cat "$work/time" >&2; exit 1; }
grep -E "Elapsed|Maximum resident" "$work/time"
rm -rf "$OUT"
mkdir -p "$OUT/m/segment-0" "$OUT/m/segment-1" "$OUT/m/aggregate"
cp "$work/m/segments.json" "$OUT/m/"
for i in 0 1; do cp "$work/m/segment-$i/vk" "$OUT/m/segment-$i/vk"; done
cp "$work/m/aggregate/vk" "$OUT/m/aggregate/vk"
cp "$work/aggregate.json" "$OUT/aggregate.json"
du -ab "$OUT"
