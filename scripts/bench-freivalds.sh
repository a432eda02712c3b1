#!/usr/bin/env bash
# The two linear arguments side by side in one run (issue 15):
#
#   scripts/bench-freivalds.sh [--compile-only MODEL ...] MODEL ...
#
# For each MODEL (of ../shared/models or ../shared/models/large), compiles with
# `--linear dot` and `--linear freivalds` (one circuit, --max-memory 100000 so that both
# stay whole), then sets up, proves and verifies each (/usr/bin/time: wall seconds, peak
# MB). Models after --compile-only are only compiled (--max-memory 300000, so that they
# stay one circuit): one this machine cannot hold (the dot-product resnet18_c64 or
# gpt2_block) is reported by its plan. Prints a markdown
# table: rows, k, fixed columns (before selector compression) × 2^k as fixed cells, the
# parameters, predicted and measured prove seconds and peaks. Uses target/release/zkinfer
# (built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
Z=$PWD/target/release/zkinfer
[ -x "$Z" ] || cargo build -q --release --locked --bin zkinfer
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. scripts/measure.sh

# Rows, k, fixed cells, parameters and the prediction of a compiled circuit.
plan() {
  python3 - "$1/circuit.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
p, l = c["plan"], c["plan"]["layout"]
rows = max(p[k] for k in ("linear_rows", "horner_rows", "product_rows", "elementwise_rows", "table_rows",
                          "hash_rows", "pack_rows", "link_rows", "instance_rows") if k in p)
params = sum(len(op["Linear"]["weight"]) + len(op["Linear"]["bias"])
             for op in c["model"]["ops"] if "Linear" in op)
fixed = p["fixed_columns"] * (1 << l["k"])
print(rows, l["k"], fixed, params, f'{p["predicted"]["prove_s"]:.1f}', f'{p["predicted"]["peak_mb"]:.0f}',
      len(l.get("freivalds", [])))
EOF
}

echo "| model | argument | rows | k | fixed cells (× params) | checked by Freivalds | predicted prove s / MB | setup s / MB | prove s / MB | verify |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
only=0
for model in "$@"; do
  if [ "$model" = "--compile-only" ]; then only=1; continue; fi
  M=../shared/models/large
  [ -f "$M/$model.onnx" ] || M=../shared/models
  for linear in dot freivalds; do
    d=$tmp/$model-$linear
    "$Z" compile "$M/$model.onnx" --calibration "$M/$model.input.json" --out "$d" \
      --linear $linear --max-memory $((only ? 300000 : 100000)) >/dev/null
    read -r rows k fixed params ps pm nf <<<"$(plan "$d")"
    ratio=$(python3 -c "print(f'{$fixed/$params:.1f}')")
    setup="—"; prove="—"; verdict="not run"
    if [ $only = 0 ]; then
      read -r ss sm <<<"$(measure "$Z" setup "$d" --dev-srs)"
      read -r pt pp <<<"$(measure "$Z" prove "$d" --input "$M/$model.input.json" \
        --proof "$d/proof.json" --engine cpu)"
      verdict=$("$Z" verify "$d" --proof "$d/proof.json" 2>/dev/null | sed -n "1s/:.*//p")
      setup="$ss / $sm"; prove="$pt / $pp"
      rm -f "$d/pk"
    fi
    echo "| $model | $linear | $rows | $k | $fixed ($ratio×) | $nf | $ps / $pm | $setup | $prove | $verdict |"
  done
done
