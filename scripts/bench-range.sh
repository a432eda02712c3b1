#!/usr/bin/env bash
# Two compile settings side by side in one run (issue 17), by default the two range checks:
#
#   [COMPILE_ARGS="--params hashed"] [VARIANTS="--range table;--range auto"] \
#     scripts/bench-range.sh MODEL ...
#
# For each MODEL (of ../shared/models or ../shared/models/large), compiles once per
# variant (`;`-separated compile flags), by default twice at the default settings:
# `--range table` (every value looked up in one table of 2^bits rows, as before limbs) and
# `--range auto` (the default: the planner takes limbs where they pay), each with its own
# default widths; then sets up, proves and verifies each (/usr/bin/time: wall seconds,
# peak MB). Prints a markdown table: k (activation bits; the functions' input width where
# narrower), table rows, lookups, the predicted and measured prove time, and the output's
# max |error| against the float model. Uses $ZKINFER (default target/release/zkinfer,
# built when missing); $COMPILE_ARGS are added to every compile (e.g. hashed weights,
# whose range check is in limbs too where the activations' is). The old default against
# narrower function tables: VARIANTS="--table-bits 16;" (an empty variant: the default).
set -euo pipefail
cd "$(dirname "$0")/.."
Z=${ZKINFER:-$PWD/target/release/zkinfer}
if [ ! -x "$Z" ]; then cargo build -q --release --locked --bin zkinfer; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. scripts/measure.sh

IFS=';' read -r -a variants <<<"${VARIANTS:---range table;--range auto}"
[[ "${VARIANTS:-}" != *";" ]] || variants+=("")
echo "| model | settings | k (bits) | table rows | lookups | predicted prove s | setup s / MB | prove s / MB | verify | max abs error |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---|---:|"
for model in "$@"; do
  M=../shared/models/large
  [ -f "$M/$model.onnx" ] || M=../shared/models
  for i in "${!variants[@]}"; do
    args=${variants[$i]}
    d=$tmp/$model-$i
    # shellcheck disable=SC2086 # the flags are words
    "$Z" compile "$M/$model.onnx" --calibration "$M/$model.input.json" --out "$d" \
      $args ${COMPILE_ARGS:-} >"$tmp/compile.log" 2>&1
    read -r k bits table lookups ps limbs <<<"$(python3 - "$d/circuit.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
p, l, m = c["plan"], c["plan"]["layout"], c["model"]
narrow = [t["in_bits"] for t in m.get("tables", []) if t.get("in_bits", 0)]
bits = f'{m["act_bits"]}' + (f'/{min(narrow)}' if narrow else '')
print(l["k"], bits, p["table_rows"], p["lookups"],
      f'{p["predicted"]["prove_s"]:.2f}', l.get("limb_bits", 0))
PY
)"
    err=$(sed -n 's/^  fidelity  max |error| \([0-9.]*\),.*/\1/p' "$tmp/compile.log")
    read -r ss sm <<<"$(measure "$Z" setup "$d" --dev-srs)"
    read -r pt pp <<<"$(measure "$Z" prove "$d" --input "$M/$model.input.json" \
      --proof "$d/proof.json" --engine cpu)"
    verdict=$("$Z" verify "$d" --proof "$d/proof.json" 2>/dev/null || true)
    verdict=${verdict%%:*}
    how="${args:-default}${COMPILE_ARGS:+ $COMPILE_ARGS}"
    [ "$limbs" = 0 ] || how="$how ($limbs-bit limbs)"
    echo "| $model | $how | $k ($bits) | $table | $lookups | $ps | $ss / $sm | $pt / $pp | $verdict | $err |"
    rm -rf "$d"
  done
done
