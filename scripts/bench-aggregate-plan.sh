#!/usr/bin/env bash
# What planning for folding buys (`compile --aggregate`, issue 18): mlp_tiny at 8 bits
# in 2 segments, compiled with the default plan and with --aggregate, each set up, folded
# by `zkinfer aggregate` at k 21 (development SRS) and verified natively and in revm.
# Prints the aggregation's times, peak memory, proof size, gas and contract sizes.
# About 13 minutes and 14 GB on two cores. Uses $ZKINFER (default target/release/zkinfer).
#   scripts/bench-aggregate-plan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
Z=${ZKINFER:-$PWD/target/release/zkinfer}
[ -x "$Z" ] || cargo build -q --release --locked --bin zkinfer
command -v /usr/bin/time >/dev/null || { echo "error: /usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
scripts/install-solc.sh >/dev/null
M=../shared/models
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for plan in default aggregate; do
  d=$work/$plan
  flags=()
  [ "$plan" = default ] || flags=(--aggregate)
  "$Z" compile $M/mlp_tiny.onnx --calibration $M/mlp_tiny.input.json --out "$d" \
    --bits 8 --segments 2 "${flags[@]}" > "$work/compile.log" 2>&1
  "$Z" setup "$d" --dev-srs > /dev/null 2>&1
  /usr/bin/time -f "%e s wall, peak %M KB" -o "$work/time" "$Z" aggregate "$d" \
    --input $M/mlp_tiny.input.json --proof "$d.agg.json" --dev-srs > "$work/agg.log" 2>&1
  echo "== mlp_tiny, 2 segments, plan: $plan ($(git rev-parse --short HEAD))"
  grep -E "folding" "$work/compile.log" || true
  grep -E "model id|proof  |time  |peak memory" "$work/agg.log"
  echo "  aggregate: $(cat "$work/time")"
  "$Z" verify "$d" --proof "$d.agg.json" 2>/dev/null | grep -E "^(accepted|rejected)" | cut -c1-60
  "$Z" verify-evm "$d" --proof "$d.agg.json" 2>/dev/null | grep -E "gas|code"
done
