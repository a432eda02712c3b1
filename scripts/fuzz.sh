#!/usr/bin/env bash
# Fuzzes what zkinfer reads from disk: proof files, verifying keys, compiled circuits
# (fuzz/fuzz_targets). A crash (a panic, an abort, an out-of-memory) fails the script and
# leaves the input under fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh [SECONDS]      # per target; default 20 (the test command's smoke run)
#   scripts/fuzz.sh 3600           # a real session
#
# Installs cargo-fuzz from crates.io into target/tools. libFuzzer's coverage build needs
# unstable flags only with a sanitizer, so this runs without one (`-s none`) on the
# stable toolchain, with RUSTC_BOOTSTRAP=1 for the `--cfg fuzzing` build; use a nightly
# toolchain and drop `-s none` for AddressSanitizer. Seeds are real artifacts: a circuit,
# key and proof of mlp_tiny made with the freshly built zkinfer.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-20}
FUZZ_VERSION=0.12.0

FUZZ=$ROOT/target/tools/bin/cargo-fuzz
if [ ! -x "$FUZZ" ] || [ "$("$FUZZ" --version | awk '{print $2}')" != "$FUZZ_VERSION" ]; then
  echo "== installing cargo-fuzz $FUZZ_VERSION (crates.io)"
  cargo install -q cargo-fuzz --version "=$FUZZ_VERSION" --locked --root "$ROOT/target/tools"
fi

echo "== seeds: mlp_tiny compiled, keyed and proven"
cargo build -q -p zkinfer --locked
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
M=../shared/models
target/debug/zkinfer compile $M/mlp_tiny.onnx --calibration $M/mlp_tiny.input.json \
  --out "$seeds/m" --params hashed --input hashed >/dev/null
target/debug/zkinfer setup "$seeds/m" --dev-srs >/dev/null 2>&1
target/debug/zkinfer prove "$seeds/m" --input $M/mlp_tiny.input.json --proof "$seeds/proof.json" >/dev/null 2>&1
for t in proof_file verifying_key compiled_circuit; do mkdir -p "fuzz/corpus/$t"; done
cp "$seeds/proof.json" fuzz/corpus/proof_file/seed-proof.json
cp "$seeds/m/vk" fuzz/corpus/verifying_key/seed-vk
cp "$seeds/m/circuit.json" fuzz/corpus/compiled_circuit/seed-circuit.json
export ZKINFER_FUZZ_VK=$seeds/m/vk

export RUSTC_BOOTSTRAP=1
for t in proof_file verifying_key compiled_circuit; do
  echo "== fuzzing $t for ${SECONDS_PER_TARGET}s"
  if ! (cd fuzz && "$FUZZ" run -s none --release "$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=4096 -max_len=262144 \
    -print_final_stats=1) >"$seeds/$t.log" 2>&1; then
    tail -40 "$seeds/$t.log" >&2
    echo "error: fuzzing $t failed; a crashing input is under fuzz/artifacts/$t/" >&2
    exit 1
  fi
  grep -E "^stat::number_of_executed_units|^#[0-9]+ +DONE" "$seeds/$t.log" || true
done
echo "fuzz: 3 targets, no crash"
