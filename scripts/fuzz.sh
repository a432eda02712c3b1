#!/usr/bin/env bash
# Fuzzes what zkinfer reads from disk: proof files, verifying keys, compiled circuits,
# proof bundles, capability certificates and aggregated proofs
# (fuzz/fuzz_targets, libFuzzer through libfuzzer-sys). A crash (a panic, an overflow, an
# abort, an out-of-memory) fails the script and leaves the input under fuzz/artifacts/.
#
#   scripts/fuzz.sh [SECONDS [ZKINFER]]   # per target; default 20 (the test command's smoke run)
#   scripts/fuzz.sh 3600                  # a real session
# ZKINFER is a built zkinfer binary to make the seeds with (the test command passes the one
# `cargo test` built, saving a rebuild with other features); without it, one is built.
#
# It builds the targets itself with the coverage instrumentation `cargo fuzz` uses
# (stable rustc, no sanitizer, debug assertions on), so nothing needs installing; fuzz/
# is an ordinary cargo-fuzz project too (`cargo +nightly fuzz run proof_file` adds
# AddressSanitizer). Seeds are real artifacts: mlp_tiny compiled (weights and input
# hashed), keyed and proven with the freshly built zkinfer.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-20}
TARGETS="proof_file verifying_key compiled_circuit bundle_file certificate_file aggregate_file"
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')

echo "== seeds: mlp_tiny compiled, keyed and proven"
ZKINFER=${2:-}
if [ -z "$ZKINFER" ]; then
  cargo build -q -p zkinfer --locked
  ZKINFER=target/debug/zkinfer
fi
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
M=../shared/models
"$ZKINFER" compile $M/mlp_tiny.onnx --calibration $M/mlp_tiny.input.json \
  --out "$seeds/m" --params hashed --input hashed >/dev/null
"$ZKINFER" setup "$seeds/m" --dev-srs >/dev/null 2>&1
"$ZKINFER" prove "$seeds/m" --input $M/mlp_tiny.input.json --proof "$seeds/proof.json" >/dev/null 2>&1
echo "== seeds: mlp_tiny (8-bit) in 2 linked segments, keyed and proven as a bundle"
"$ZKINFER" compile $M/mlp_tiny.onnx --calibration $M/mlp_tiny.input.json \
  --out "$seeds/s" --bits 8 --segments 2 >/dev/null
"$ZKINFER" setup "$seeds/s" --dev-srs >/dev/null 2>&1
"$ZKINFER" prove "$seeds/s" --input $M/mlp_tiny.input.json --proof "$seeds/bundle.json" \
  --engine cpu >/dev/null 2>&1
echo "== seeds: a certificate of 4 digits test images (the digits MLP, batches of 2)"
R=$M/real
"$ZKINFER" compile $R/digits_mlp.onnx --calibration $R/digits_mlp.calibration.json \
  --out "$seeds/c" --certify 2 >/dev/null
"$ZKINFER" setup "$seeds/c" --dev-srs >/dev/null 2>&1
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); json.dump({"input_data": d["input_data"][:4], "labels": d["labels"][:4]}, open(sys.argv[2], "w"))' \
  $R/digits_test.json "$seeds/four.json"
"$ZKINFER" certify "$seeds/c" --dataset "$seeds/four.json" --out "$seeds/certificate.json" >/dev/null 2>&1
for t in $TARGETS; do mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"; done
cp "$seeds/bundle.json" fuzz/corpus/bundle_file/seed-bundle.json
cp "$seeds/proof.json" fuzz/corpus/proof_file/seed-proof.json
cp "$seeds/m/vk" fuzz/corpus/verifying_key/seed-vk
# The key's header alone: the target also reads an input as the header of the seed key.
python3 -c 'import sys, struct; b = open(sys.argv[1], "rb").read(); n = struct.unpack("<I", b[12:16])[0]; sys.stdout.buffer.write(b[16:16 + n])' \
  "$seeds/m/vk" > fuzz/corpus/verifying_key/seed-header.json
cp "$seeds/m/circuit.json" fuzz/corpus/compiled_circuit/seed-circuit.json
cp "$seeds/certificate.json" fuzz/corpus/certificate_file/seed-certificate.json
export ZKINFER_FUZZ_VK=$seeds/m/vk ZKINFER_FUZZ_PROOF=$seeds/proof.json ZKINFER_FUZZ_BUNDLE_DIR=$seeds/s
export ZKINFER_FUZZ_CERTIFICATE_DIR=$seeds/c
# The committed aggregated proof (tests/fixtures/aggregate): folding one takes minutes.
cp tests/fixtures/aggregate/aggregate.json fuzz/corpus/aggregate_file/seed-aggregate.json
export ZKINFER_FUZZ_AGGREGATE_DIR=$PWD/tests/fixtures/aggregate/m

echo "== building the fuzz targets (instrumented)"
# --target keeps the instrumentation off build scripts and proc macros, as cargo fuzz does.
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing -Cdebug-assertions" \
  cargo build -q --manifest-path fuzz/Cargo.toml --release --locked --target "$TRIPLE" --bins

for t in $TARGETS; do
  echo "== fuzzing $t for ${SECONDS_PER_TARGET}s"
  if ! "fuzz/target/$TRIPLE/release/$t" "fuzz/corpus/$t" -max_total_time="$SECONDS_PER_TARGET" \
    -rss_limit_mb=4096 -max_len=262144 -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$t/" >"$seeds/$t.log" 2>&1; then
    tail -40 "$seeds/$t.log" >&2
    echo "error: fuzzing $t failed; the crashing input is under fuzz/artifacts/$t/" >&2
    exit 1
  fi
  grep -E "^stat::number_of_executed_units" "$seeds/$t.log" || true
done
echo "fuzz: 6 targets, no crash"
