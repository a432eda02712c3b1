#!/usr/bin/env bash
# Run on a GPU machine with the prebuilt binaries carried over (never builds anything):
#   scripts/gpu-check.sh [MODELS_DIR]        (default ../shared/models)
# For every model: compile, setup (dev SRS), prove on the CPU (all cores) and on the GPU,
# verify both proofs with the standard verifier, and print a table:
#   model | k | GPU prove s | CPU prove s | CPU/GPU | verified
# (prove s = witness columns + create_proof, keys already loaded)
# then where GPU time goes for the largest model proved (halo2-axiom-gpu's sections).
# Circuits are compiled with --linear dot (single phase, what the CUDA engine proves); a
# last check shows that a two-phase (Freivalds) circuit is refused on the GPU with a clear
# message and proven by `--engine auto` on the CPU.
# Binaries come from $ZKINFER_BIN (default target/release). Exit 1 if any proof fails.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${ZKINFER_BIN:-target/release}
MODELS=${1:-../shared/models}
WORK=$(mktemp -d)
export ZKINFER_CUDA=$BIN/zkinfer-cuda

echo "machine: $(nproc) cores; GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo none)"
if ! "$BIN/zkinfer-cuda" probe; then
  echo "error: the GPU build cannot see a device" >&2
  exit 1
fi

# Witness (trace + advice columns, on the CPU) plus create_proof: everything after loading keys.
prove_secs() {
  sed -n 's/.*witness \([0-9.]*\) s .*prove \([0-9.]*\) s (\(cpu\|cuda\)).*/\1 \2/p' "$1" | tail -1 \
    | awk '{ printf "%.3f", $1 + $2 }'
}

printf '\n| model | k | GPU prove s | CPU prove s | CPU/GPU | verified |\n|---|---|---|---|---|---|\n'
status=0
largest=""
largest_src=""
# NAME or NAME:BITS (activation bits; 16 makes a 2^16-row table, so k >= 17: the size
# where the GPU's MSM path runs rather than its small-input CPU shortcut).
for entry in mlp_tiny mlp_mnist mlp_wide mlp_wide:16 lenet5 lenet5:16 cnn_cifar cnn_cifar:16 attn_block attn_block:14; do
  src=${entry%%:*}
  bits=${entry#*:}; [ "$bits" = "$entry" ] && bits=12
  m=$entry; [ "$bits" = 12 ] || m="${src}_b$bits"
  d=$WORK/$m
  [ -f "$MODELS/$src.onnx" ] || continue
  if ! "$BIN/zkinfer" compile "$MODELS/$src.onnx" --calibration "$MODELS/$src.input.json" --out "$d" --bits "$bits" --linear dot >"$WORK/$m.compile.log" 2>&1; then
    printf '| %s | – | – | – | – | not compiled: %s |\n' "$m" "$(grep -m1 error "$WORK/$m.compile.log" | cut -c1-90)"
    continue
  fi
  k=$(sed -n 's/^  k *\([0-9]*\).*$/\1/p' "$WORK/$m.compile.log")
  "$BIN/zkinfer" setup "$d" --dev-srs >"$WORK/$m.setup.log" 2>&1 || { echo "| $m | $k | setup failed |"; status=1; continue; }
  "$BIN/zkinfer" prove "$d" --input "$MODELS/$src.input.json" --proof "$d/cpu.json" --engine cpu >"$WORK/$m.cpu.log" 2>&1
  cpu_rc=$?
  best=""
  for run in 1 2; do
    "$BIN/zkinfer" prove "$d" --input "$MODELS/$src.input.json" --proof "$d/gpu.json" --engine cuda >"$WORK/$m.gpu$run.log" 2>&1 || { best=""; break; }
    t=$(prove_secs "$WORK/$m.gpu$run.log")
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
  done
  verified=""
  for p in cpu gpu; do
    if [ -f "$d/$p.json" ] && "$BIN/zkinfer" verify "$d" --proof "$d/$p.json" >/dev/null 2>&1; then
      verified="$verified $p:ok"
    else
      verified="$verified $p:FAIL"; status=1
    fi
  done
  cpu=$( [ $cpu_rc -eq 0 ] && prove_secs "$WORK/$m.cpu.log" || echo FAIL)
  gpu=${best:-FAIL}
  if [[ $gpu =~ ^[0-9.]+$ && $cpu =~ ^[0-9.]+$ ]]; then
    ratio=$(awk "BEGIN{printf \"%.1fx\", $cpu / $gpu}")
  else
    ratio="–"
  fi
  printf '| %s | %s | %s | %s | %s |%s |\n' "$m" "$k" "$gpu" "$cpu" "$ratio" "$verified"
  if [ "$gpu" = FAIL ]; then
    status=1; tail -3 "$WORK/$m.gpu1.log"
  else
    largest=$m; largest_src=$src
  fi
done

if [ -n "$largest" ]; then
  echo
  echo "where GPU time goes ($largest, halo2-axiom-gpu sections, busy time):"
  "$BIN/zkinfer-cuda" prove "$WORK/$largest" --input "$MODELS/$largest_src.input.json" \
    --proof "$WORK/profile.json" --profile >/dev/null 2>"$WORK/profile.log"
  # Inclusive busy time per section (nested sections are also inside their parents).
  grep ' close ' "$WORK/profile.log" | awk '{
    n = split($0, parts, "phase=\""); if (n < 2) next
    split(parts[n], q, "\""); phase = q[1]
    if (!match($0, /time\.busy=[0-9.]+[^ ]*/)) next
    v = substr($0, RSTART + 10, RLENGTH - 10); unit = v; sub(/^[0-9.]+/, "", unit); x = v + 0
    ms = (unit == "ns") ? x / 1e6 : (unit == "s") ? x * 1e3 : (unit == "ms") ? x : x / 1e3
    sum[phase] += ms; calls[phase]++
  } END { for (p in sum) printf "  %10.2f ms  %4d x  %s\n", sum[p], calls[p], p }' | sort -rn | head -25
fi
echo
echo "two-phase (Freivalds) circuit, cnn_cifar --linear freivalds:"
d=$WORK/cnn_cifar_freivalds
"$BIN/zkinfer" compile "$MODELS/cnn_cifar.onnx" --calibration "$MODELS/cnn_cifar.input.json" --out "$d" \
  --linear freivalds >"$WORK/fv.compile.log" 2>&1 && "$BIN/zkinfer" setup "$d" --dev-srs >/dev/null 2>&1
if "$BIN/zkinfer" prove "$d" --input "$MODELS/cnn_cifar.input.json" --proof "$d/gpu.json" \
  --engine cuda >"$WORK/fv.gpu.log" 2>&1; then
  echo "  --engine cuda proved it (multi-phase works on the GPU: update the engine)"
else
  echo "  --engine cuda: $(grep -m1 -o 'single-phase circuits only[^;]*' "$WORK/fv.gpu.log" || tail -1 "$WORK/fv.gpu.log")"
fi
if "$BIN/zkinfer" prove "$d" --input "$MODELS/cnn_cifar.input.json" --proof "$d/auto.json" \
  --engine auto >"$WORK/fv.auto.log" 2>&1 && "$BIN/zkinfer" verify "$d" --proof "$d/auto.json" >/dev/null 2>&1; then
  echo "  --engine auto: proven on the CPU, verified ($(prove_secs "$WORK/fv.auto.log") s)"
else
  echo "  --engine auto: FAIL"; status=1
fi
[ -n "${OUT:-}" ] && tar czf "$OUT/gpu-check-logs.tgz" -C "$WORK" $(cd "$WORK" && ls *.log)
exit $status
