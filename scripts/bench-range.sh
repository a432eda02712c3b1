#!/usr/bin/env bash
# The two range checks side by side in one run (issue 17):
#
#   [COMPILE_ARGS="--params hashed"] scripts/bench-range.sh MODEL ...
#
# For each MODEL (of ../shared/models or ../shared/models/large), compiles at the default
# settings twice: `--range table` (every value looked up in one table of 2^bits rows, as
# before limbs) and `--range auto` (the default: the planner takes limbs where they pay),
# each with its own default widths; then sets up, proves and verifies each
# (/usr/bin/time: wall seconds, peak MB). Prints a markdown table: k (activation bits),
# table rows, lookups, the predicted and measured prove time, and the output's max |error|
# against the float model. Uses $ZKINFER (default target/release/zkinfer, built when
# missing); $COMPILE_ARGS are added to both compiles (e.g. hashed weights, whose range
# check is in limbs too where the activations' is).
set -euo pipefail
cd "$(dirname "$0")/.."
Z=${ZKINFER:-$PWD/target/release/zkinfer}
if [ ! -x "$Z" ]; then cargo build -q --release --locked --bin zkinfer; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. scripts/measure.sh

echo "| model | --range | k (bits) | table rows | lookups | predicted prove s | setup s / MB | prove s / MB | verify | max abs error |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---|---:|"
for model in "$@"; do
  M=../shared/models/large
  [ -f "$M/$model.onnx" ] || M=../shared/models
  for range in table auto; do
    d=$tmp/$model-$range
    "$Z" compile "$M/$model.onnx" --calibration "$M/$model.input.json" --out "$d" \
      --range $range ${COMPILE_ARGS:-} >"$tmp/compile.log" 2>&1
    read -r k bits table lookups ps limbs <<<"$(python3 - "$d/circuit.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
p, l = c["plan"], c["plan"]["layout"]
print(l["k"], c["model"]["act_bits"], p["table_rows"], p["lookups"],
      f'{p["predicted"]["prove_s"]:.2f}', l.get("limb_bits", 0))
PY
)"
    err=$(sed -n 's/^  fidelity  max |error| \([0-9.]*\),.*/\1/p' "$tmp/compile.log")
    read -r ss sm <<<"$(measure "$Z" setup "$d" --dev-srs)"
    read -r pt pp <<<"$(measure "$Z" prove "$d" --input "$M/$model.input.json" \
      --proof "$d/proof.json" --engine cpu)"
    verdict=$("$Z" verify "$d" --proof "$d/proof.json" 2>/dev/null || true)
    verdict=${verdict%%:*}
    how="$range${COMPILE_ARGS:+ $COMPILE_ARGS}"
    [ "$limbs" = 0 ] || how="$how ($limbs-bit limbs)"
    echo "| $model | $how | $k ($bits) | $table | $lookups | $ps | $ss / $sm | $pt / $pp | $verdict | $err |"
    rm -rf "$d"
  done
done
