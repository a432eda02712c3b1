#!/usr/bin/env bash
# Segmented proving against the single circuit, side by side in one run (issue 14):
#
#   scripts/bench-segments.sh MODEL BUDGET_MB [WHOLE_BUDGET_MB]
#
# MODEL is a model of ../shared/models/large (or ../shared/models). The single circuit is
# compiled with WHOLE_BUDGET_MB (default 20000; `-` skips it, for a model that fits no
# single circuit here or is one segment anyway), set up and proven with `zkinfer prove`;
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

ws=- wm=- wp=- wpm=-
if [ "$WHOLE_BUDGET" != - ]; then
  echo "== $MODEL: single circuit (--max-memory $WHOLE_BUDGET)"
  "$Z" compile "$M/$MODEL.onnx" --calibration "$M/$MODEL.input.json" --out "$tmp/whole" \
    --max-memory "$WHOLE_BUDGET" | grep -E "^  (k|predicted|rows)"
  read -r ws wm <<<"$(measure "$Z" setup "$tmp/whole" --dev-srs)"
  read -r wp wpm <<<"$(measure "$Z" prove "$tmp/whole" --input "$M/$MODEL.input.json" \
    --proof "$tmp/whole.json" --engine cpu)"
  "$Z" verify "$tmp/whole" --proof "$tmp/whole.json" 2>/dev/null | head -1
fi

echo "== $MODEL: segments (--max-memory $BUDGET)"
"$Z" compile "$M/$MODEL.onnx" --calibration "$M/$MODEL.input.json" --out "$tmp/seg" \
  --max-memory "$BUDGET" | grep -E "^  *(seg|[0-9]+ |predicted)"
read -r ss sm <<<"$(measure "$Z" setup "$tmp/seg" --dev-srs)"
if [ ! -f "$tmp/seg/segments.json" ]; then
  # The model fits the budget as one circuit: measure that circuit.
  read -r t p <<<"$(measure "$Z" prove "$tmp/seg" --input "$M/$MODEL.input.json" \
    --proof "$tmp/one.json" --engine cpu)"
  read -r vs vm <<<"$(measure "$Z" verify "$tmp/seg" --proof "$tmp/one.json")"
  python3 - "$tmp/seg/circuit.json" "$t" "$p" "$sm" <<'EOF'
import json, sys
plan = json.load(open(sys.argv[1]))["plan"]
t, p = float(sys.argv[2]), float(sys.argv[3])
pred = plan["predicted"]
s = float(sys.argv[4])
print("\n| segment | k | predicted s | proved s | error | predicted prove MB | prove peak MB "
      "| error | predicted setup MB | setup peak MB | error |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
print(f"| one circuit | {plan['layout']['k']} | {pred['prove_s']:.1f} | {t:.1f} "
      f"| {100 * (pred['prove_s'] - t) / t:+.0f}% | {pred['prove_mb']:.0f} | {p:.0f} "
      f"| {100 * (pred['prove_mb'] - p) / p:+.0f}% | {pred['setup_mb']:.0f} | {s:.0f} "
      f"| {100 * (pred['setup_mb'] - s) / s:+.0f}% |")
EOF
  echo "setup $ss s, peak $sm MB; verified in $vs s"
  exit 0
fi
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
  # The segment's own key generation, alone in a process (a copy of its directory), so
  # that its setup peak is measured too.
  cp -r "$tmp/seg/segment-$i" "$tmp/alone"
  read -r _ sp <<<"$(measure "$Z" setup "$tmp/alone" --dev-srs)"
  rm -rf "$tmp/alone"
  row=$(python3 - "$tmp/seg" "$i" "$t" "$p" "$sp" <<'EOF'
import json, os, sys
s = json.load(open(os.path.join(sys.argv[1], "segments.json")))["segments"][int(sys.argv[2])]
pred = json.load(open(os.path.join(sys.argv[1], s["dir"], "circuit.json")))["plan"]["predicted"]
t, p, sp = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
err = lambda a, b: f"{100 * (a - b) / b:+.0f}%"
peak = max(p, sp)
print(f"| {sys.argv[2]} | {s['ops'][0]}..{s['ops'][1]} | {s['k']} | {s['predicted_s']:.1f} | {t:.1f} "
      f"| {err(s['predicted_s'], t)} | {pred['setup_mb']:.0f} / {sp:.0f} ({err(pred['setup_mb'], sp)}) "
      f"| {pred['prove_mb']:.0f} / {p:.0f} ({err(pred['prove_mb'], p)}) "
      f"| {pred['peak_mb']:.0f} / {peak:.0f} ({err(pred['peak_mb'], peak)}) |")
EOF
)
  rows+="$row"$'\n'
  total=$(python3 -c "print($total + $t)")
  maxpeak=$((p > maxpeak ? p : maxpeak))
done
"$Z" bundle "$tmp/seg" --out "$tmp/bundle.json" "${parts[@]}" >/dev/null
read -r vs vm <<<"$(measure "$Z" verify "$tmp/seg" --proof "$tmp/bundle.json")"

echo
echo "| segment | ops | k | predicted s | proved s | error | setup MB: predicted / measured | prove MB: predicted / measured | peak MB: predicted / measured |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
printf "%s" "$rows"
echo
echo "| $MODEL | setup s | setup peak MB | prove s | largest prove peak MB |"
echo "|---|---:|---:|---:|---:|"
echo "| single circuit | $ws | $wm | $wp | $wpm |"
echo "| $n segments (--max-memory $BUDGET) | $ss | $sm | $total | $maxpeak |"
if [ "$wp" != - ]; then
  python3 -c "print(f'segmented / single prove time: {$total / $wp:.2f}x')"
fi
python3 - "$tmp/seg" "$sm" <<'EOF'
import json, os, sys
d = sys.argv[1]
setup = max(json.load(open(os.path.join(d, s["dir"], "circuit.json")))["plan"]["predicted"]["setup_mb"]
            for s in json.load(open(os.path.join(d, "segments.json")))["segments"])
m = float(sys.argv[2])
print(f"setup (one process, every segment): peak {m:.0f} MB, predicted {setup:.0f} MB "
      f"(the largest segment's), {100 * (setup - m) / m:+.0f}%")
EOF
echo "bundle verified in $vs s, peak $vm MB"
