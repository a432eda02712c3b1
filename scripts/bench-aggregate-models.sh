#!/usr/bin/env bash
# Issue 18's on-chain target: each model compiled for folding (`compile --aggregate`,
# default settings otherwise), set up, folded by `zkinfer aggregate` at k 21
# (development SRS), verified natively and in revm (`verify-evm`: contracts, bytes, gas).
# Models: cnn_cifar whole and resnet20_c16 in 2 segments by default; or NAME[:SEGMENTS]
# arguments (a name under ../shared/models or ../shared/models/large).
# cnn_cifar takes about 6 minutes and 12 GB on two cores. Uses $ZKINFER (default
# target/release/zkinfer).
#   scripts/bench-aggregate-models.sh [NAME[:SEGMENTS] ...]
set -euo pipefail
cd "$(dirname "$0")/.."
Z=${ZKINFER:-$PWD/target/release/zkinfer}
[ -x "$Z" ] || cargo build -q --release --locked --bin zkinfer
command -v /usr/bin/time >/dev/null || { echo "error: /usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
scripts/install-solc.sh >/dev/null
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(cnn_cifar resnet20_c16:2)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
timed() { # LABEL LOG COMMAND...: runs it, keeps its output in LOG, prints wall and peak
  local label=$1 log=$2; shift 2
  /usr/bin/time -f "%e s wall, peak %M KB" -o "$work/time" "$@" > "$log" 2>&1 \
    || { echo "error: $label failed:" >&2; tail -20 "$log" >&2; exit 1; }
  echo "  $label: $(cat "$work/time")"
}
for spec in "${models[@]}"; do
  name=${spec%%:*}; segments=1
  [ "$spec" = "$name" ] || segments=${spec#*:}
  m=../shared/models/$name.onnx
  [ -f "$m" ] || m=../shared/models/large/$name.onnx
  [ -f "$m" ] || { echo "error: no model $name.onnx under ../shared/models or ../shared/models/large" >&2; exit 2; }
  input=${m%.onnx}.input.json
  d=$work/$name
  echo "== $name, $segments segment(s), compile --aggregate ($(git rev-parse --short HEAD), $(nproc) cores)"
  timed compile "$work/compile.log" "$Z" compile "$m" --calibration "$input" --out "$d" \
    --segments "$segments" --aggregate
  grep -E "^  (k |columns|public|folding)" "$work/compile.log" || true
  timed setup "$work/setup.log" "$Z" setup "$d" --dev-srs
  timed aggregate "$work/agg.log" "$Z" aggregate "$d" --input "$input" --proof "$d.agg.json" --dev-srs
  grep -E "folded|proof  |time  |peak memory" "$work/agg.log"
  timed verify "$work/verify.log" "$Z" verify "$d" --proof "$d.agg.json"
  grep -E "time" "$work/verify.log"
  timed verify-evm "$work/evm.log" "$Z" verify-evm "$d" --proof "$d.agg.json"
  grep -E "^accepted|gas|code" "$work/evm.log"
done
