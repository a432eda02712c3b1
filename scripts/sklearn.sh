#!/usr/bin/env bash
# scikit-learn classifiers as users export them (issue 16): MLPClassifier,
# LogisticRegression, RandomForestClassifier and GradientBoostingClassifier trained on
# scikit-learn's bundled digits and exported with skl2onnx (zipmap off), then
#  1. every held-out test image (450) through the integer interpreter each circuit is
#     tested against: the proven accuracy beside onnxruntime's (a table);
#  2. per model, one real proof: compile, setup, prove, verify with the CLI, and the
#     proven label and probabilities against onnxruntime's.
#   scripts/sklearn.sh [MODEL...]
# Installs pinned scikit-learn, skl2onnx and onnxruntime into target/sklearn-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/sklearn-venv
if ! "$VENV/bin/python" -c "import sklearn, skl2onnx, onnxruntime" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q onnx==1.17.0 scikit-learn==1.9.1 skl2onnx==1.20.0 onnxruntime==1.32.0
fi
MODELS=("$@")
[ ${#MODELS[@]} -gt 0 ] || MODELS=(mlp logistic random_forest gradient_boosting)
OUT=target/sklearn
echo "exporting with skl2onnx into $OUT (ops per model):"
"$VENV/bin/python" scripts/sklearn_export.py "$OUT" | "$VENV/bin/python" -c '
import json, sys
for k, v in json.load(sys.stdin).items():
    print("  %s: %d/450 right (onnxruntime), ops %s" % (k, v["right"], ", ".join(v["ops"])))'
cargo build -q --release --locked -p zkinfer-tests --example sklearn
cargo build -q --release --locked -p zkinfer --bin zkinfer
echo
target/release/examples/sklearn "$OUT" "${MODELS[@]}"
echo
BIN=target/release/zkinfer
for m in "${MODELS[@]}"; do
  d="$OUT/$m"
  rm -rf "$d"
  "$BIN" compile "$OUT/$m.onnx" --calibration "$OUT/calibration.json" --out "$d" >/dev/null
  "$BIN" setup "$d" --dev-srs >/dev/null 2>&1
  start=$(date +%s.%N)
  "$BIN" prove "$d" --input "$OUT/input.json" --proof "$d/proof.json" >"$d/prove.txt"
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  "$BIN" verify "$d" --proof "$d/proof.json" >/dev/null
  "$VENV/bin/python" - "$d/proof.json" "$OUT/$m.test.json" "$m" "$secs" <<'PY'
import json, sys
proof, test, name, secs = sys.argv[1:]
out = json.load(open(proof))["output"]["values"]
t = json.load(open(test))
label, probs = out[0], out[1:]
want_label, want = t["onnxruntime_labels"][0], t["onnxruntime_probabilities"][0]
err = max(abs(a - b) for a, b in zip(probs, want))
ok = label == want_label and err < 0.02
print(f"{name}: proof verified in the CLI; proven label {label:g} (onnxruntime {want_label}), "
      f"max |Δ probability| {err:.4f}; prove {float(secs):.2f} s -> {'ok' if ok else 'MISMATCH'}")
sys.exit(0 if ok else 1)
PY
done
