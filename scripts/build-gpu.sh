#!/usr/bin/env bash
# Builds the GPU prover `target/release/zkinfer-cuda` on a machine without CUDA, from the
# registries only (the toolkit: scripts/cuda-env.sh). CUDA_ARCH selects the GPU
# generations (default 90: H100/H200). The binary then needs only the NVIDIA driver and
# glibc >= 2.34. (The test command compiles it in its `cargo test --workspace`.)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cuda-env.sh
echo "== building zkinfer-cuda (CUDA_ARCH=$CUDA_ARCH)"
cargo build --release --locked -p zkinfer-cuda
BIN=$PWD/target/release/zkinfer-cuda
if readelf -d "$BIN" | grep -q 'libcudart'; then
  echo "error: $BIN links libcudart dynamically; expected the static runtime" >&2
  exit 1
fi
echo "built $BIN (needs the NVIDIA driver's libcuda.so.1 at run time)"
