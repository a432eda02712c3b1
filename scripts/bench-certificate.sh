#!/usr/bin/env bash
# Capability certificates (issue 18): the digits MLP (../shared/models/real, trained with
# scikit-learn) certifies its 450 held-out test images, in one batch of 450 and in 5
# batches of 90; each certificate verified natively against the dataset file, and in
# revm as one call of its CertificateVerifier. Prints compile, setup, certify and verify
# times and peak memory; the figures go to docs/BENCHMARKS.md.
# Usage: scripts/bench-certificate.sh [ZKINFER]
set -euo pipefail
cd "$(dirname "$0")/.."
ZKINFER=${1:-target/debug/zkinfer}
R=../shared/models/real
[ -x "$ZKINFER" ] || cargo build --locked -q -p zkinfer
scripts/install-solc.sh >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

timed() { # label, command...: wall seconds and peak MB on one line
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2> "$work/err" || {
    cat "$work/out" "$work/err" >&2; exit 1; }
  read -r secs kb < "$work/time"
  printf '  %-34s %8.1f s %8.0f MB\n' "$label" "$secs" "$((kb / 1024))"
}

for batch in 450 90; do
  dir=$work/digits-$batch
  echo "== digits MLP, certificate circuit of $batch samples a proof ($(git rev-parse --short HEAD))"
  timed "compile --certify $batch" "$ZKINFER" compile $R/digits_mlp.onnx \
    --calibration $R/digits_mlp.calibration.json --out "$dir" --certify $batch
  grep -E "^  (rows|k|columns|public)" "$work/out" | sed 's/^/    /'
  timed "setup --dev-srs" "$ZKINFER" setup "$dir" --dev-srs
  timed "certify (450 test images)" "$ZKINFER" certify "$dir" --dataset $R/digits_test.json \
    --out "$dir/cert.json"
  grep -E "batch 1/" "$work/err" | sed 's/^/    /'
  timed "verify --dataset" "$ZKINFER" verify "$dir" --proof "$dir/cert.json" \
    --dataset $R/digits_test.json
  sed -n '1p;/verify /p' "$work/out" | sed 's/^/    /'
  echo "    certificate $(wc -c < "$dir/cert.json") bytes"
  timed "verify-evm (the certificate, one call)" "$ZKINFER" verify-evm "$dir" \
    --proof "$dir/cert.json" --dataset $R/digits_test.json
  grep -E "^accepted|^rejected|call|gas|code|time" "$work/out" | sed 's/^/    /'
done
