#!/usr/bin/env bash
# Segmented proving against the single circuit, side by side in one run (issue 14):
#
#   scripts/bench-segments.sh MODEL BUDGET_MB [WHOLE_BUDGET_MB]
#
# MODEL is a model of ../shared/models/large (or ../shared/models). The single circuit is
# compiled with WHOLE_BUDGET_MB (default 20000), set up and proven with `zkinfer prove`;
# the segmented one is compiled with --max-memory BUDGET_MB, set up, and every segment is
# proven in its own process (`zkinfer prove --segment`, as a cluster worker runs it), so
# each process's peak is measured alone (/usr/bin/time). Prints a markdown table per
# segment (predicted and measured seconds and MB) and the totals. Uses
# target/release/zkinfer (built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=$1
BUDGET=$2
WHOLE_BUDGET=${3:-20000}
Z=$PWD/target/release/zkinfer
[ -x "$Z" ] || cargo build -q --release --locked --bin zkinfer
M=../shared/models/large
[ -f "$M/$MODEL.onnx" ] || M=../shared/models
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

. scripts/measure.sh

echo "== $MODEL: single circuit (--max-memory $WHOLE_BUDGET)"
"$Z" compile "$M/$MODEL.onnx" --calibration "$M/$MODEL.input.json" --out "$tmp/whole" \
  --max-memory "$WHOLE_BUDGET" | grep -E "^  (k|predicted|rows)"
read -r ws wm <<<"$(measure "$Z" setup "$tmp/whole" --dev-srs)"
read -r wp wpm <<<"$(measure "$Z" prove "$tmp/whole" --input "$M/$MODEL.input.json" \
  --proof "$tmp/whole.json" --engine cpu)"
"$Z" verify "$tmp/whole" --proof "$tmp/whole.json" 2>/dev/null | head -1

echo "== $MODEL: segments (--max-memory $BUDGET)"
"$Z" compile "$M/$MODEL.onnx" --calibration "$M/$MODEL.input.json" --out "$tmp/seg" \
  --max-memory "$BUDGET" | grep -E "^  *(seg|[0-9]+ |predicted)"
read -r ss sm <<<"$(measure "$Z" setup "$tmp/seg" --dev-srs)"
"$Z" witness "$tmp/seg" --input "$M/$MODEL.input.json" --out "$tmp/w.json" >/dev/null
n=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['segments']))" "$tmp/seg/segments.json")
rows=""
total=0
maxpeak=0
parts=()
for ((i = 0; i < n; i++)); do
  read -r t p <<<"$(measure "$Z" prove "$tmp/seg" --witness "$tmp/w.json" --segment "$i" \
    --proof "$tmp/part$i.json" --engine cpu)"
  parts+=("$tmp/part$i.json")
  row=$(python3 - "$tmp/seg/segments.json" "$i" "$t" "$p" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))["segments"][int(sys.argv[2])]
t, p = float(sys.argv[3]), float(sys.argv[4])
print(f"| {sys.argv[2]} | {s['ops'][0]}..{s['ops'][1]} | {s['k']} | {s['predicted_s']:.1f} | {t:.1f} "
      f"| {100 * (s['predicted_s'] - t) / t:+.0f}% | {s['predicted_mb']:.0f} | {p:.0f} "
      f"| {100 * (s['predicted_mb'] - p) / p:+.0f}% |")
EOF
)
  rows+="$row"$'\n'
  total=$(python3 -c "print($total + $t)")
  maxpeak=$((p > maxpeak ? p : maxpeak))
done
"$Z" bundle "$tmp/seg" --out "$tmp/bundle.json" "${parts[@]}" >/dev/null
read -r vs vm <<<"$(measure "$Z" verify "$tmp/seg" --proof "$tmp/bundle.json")"

echo
echo "| segment | ops | k | predicted s | proved s | error | predicted MB | peak MB | error |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
printf "%s" "$rows"
echo
echo "| $MODEL | setup s | setup peak MB | prove s | largest prove peak MB |"
echo "|---|---:|---:|---:|---:|"
echo "| single circuit | $ws | $wm | $wp | $wpm |"
echo "| $n segments (--max-memory $BUDGET) | $ss | $sm | $total | $maxpeak |"
python3 -c "print(f'segmented / single prove time: {$total / $wp:.2f}x; bundle verified in {$vs} s')"
