#!/usr/bin/env bash
# The output error of two zkinfer builds side by side, at the default settings, on every
# model of ../shared/models and ../shared/models/large (or those given): k and the max
# |error| against the float model on the model's input file, relative to the output
# range, as `compile` reports them. For a quantizer change: build the reference commit
# (e.g. `git worktree add /tmp/ref REF && cargo build -p zkinfer` there) and pass its
# binary first. For a change of settings, pass one binary twice and the flags of each in
# REF_ARGS / NEW_ARGS (e.g. REF_ARGS="--bits 12").
#
#   [REF_ARGS=…] [NEW_ARGS=…] scripts/compare-fidelity.sh REF_ZKINFER [NEW_ZKINFER] [-- MODEL ...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 REF_ZKINFER [NEW_ZKINFER] [-- MODEL ...]" >&2; exit 2; }
REF=$1; shift
NEW=target/debug/zkinfer
if [ $# -gt 0 ] && [ "$1" != "--" ]; then NEW=$1; shift; fi
[ "${1:-}" = "--" ] && shift
M=../shared/models
models=("$@")
[ ${#models[@]} -gt 0 ] || models=($(ls $M/*.onnx $M/large/*.onnx | xargs -n1 basename | sed 's/\.onnx$//'))
for z in "$REF" "$NEW"; do
  [ -x "$z" ] || { echo "error: $z is not an executable zkinfer" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Prints "k max range argmax" for one model and one binary (with its flags).
measure() {
  local z=$1 f=$2 args=$3
  # shellcheck disable=SC2086 # the flags are words
  "$z" compile "$f" --calibration "${f%.onnx}.input.json" --out "$tmp/c" $args >"$tmp/log" 2>&1 ||
    { echo "error: $z compile $f failed:" >&2; tail -5 "$tmp/log" >&2; exit 1; }
  local k fid
  k=$(sed -n 's/^  k *\([0-9]*\) (\([0-9]*\)-bit.*/\1 (\2)/p' "$tmp/log" | head -1 | tr -d ' ')
  fid=$(sed -n 's/^  fidelity  //p' "$tmp/log" | head -1)
  echo "$k $(sed -n 's/max |error| \([0-9.]*\),.*/\1/p' <<<"$fid") \
$(sed -n 's/.*output range ±\([0-9.]*\),.*/\1/p' <<<"$fid") \
$(sed -n 's/.*argmax agrees on \([0-9/]*\).*/\1/p' <<<"$fid")"
}
echo "| model | k (bits), ref → new | max abs error, ref | max abs error, new | output range | relative, ref | relative, new | argmax (new) |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
for m in "${models[@]}"; do
  f=$M/$m.onnx
  [ -f "$f" ] || f=$M/large/$m.onnx
  read -r k0 e0 r0 _ < <(measure "$REF" "$f" "${REF_ARGS:-}")
  read -r k1 e1 r1 a1 < <(measure "$NEW" "$f" "${NEW_ARGS:-}")
  rel() { awk -v e="$1" -v r="$2" 'BEGIN { printf "%.2f%%", 100 * e / r }'; }
  echo "| $m | $k0 → $k1 | $e0 | $e1 | ±$r1 | $(rel "$e0" "$r0") | $(rel "$e1" "$r1") | ${a1:-–} |"
done
