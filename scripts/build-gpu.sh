#!/usr/bin/env bash
# Builds the GPU prover `target/release/zkinfer-cuda` on a machine without CUDA, from the
# registries only:
#   - CUDA 13.0 (nvcc, runtime, crt, nvvm, cccl) from PyPI wheels, unpacked into one
#     toolkit tree under target/cuda-13.0 (bin, include, lib, nvvm; lib64 and
#     targets/x86_64-linux as links, the layout nvcc.profile expects);
#   - cudart linked statically (a link directory holding only libcudart.a);
#   - a link-only libcuda.so stub exporting the driver API's `cu*` symbols (no wheel
#     ships one); at run time the binary uses the driver's real libcuda.so.1.
# CUDA_ARCH selects the GPU generations (default 90: H100/H200; e.g. CUDA_ARCH=80,89,90).
# The binary then needs only the NVIDIA driver and glibc >= 2.34.
#   scripts/build-gpu.sh          release build: target/release/zkinfer-cuda
#   scripts/build-gpu.sh --dev    test-profile build: target/debug/zkinfer-cuda (the test
#                                 command uses it; it shares compiled dependencies with the tests)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PROFILE=release
[ "${1:-}" = "--dev" ] && PROFILE=dev
TK=$ROOT/target/cuda-13.0
export CUDA_ARCH=${CUDA_ARCH:-90}

if [ ! -x "$TK/bin/nvcc" ]; then
  echo "== fetching CUDA 13.0 from PyPI wheels"
  WHEELS=$ROOT/target/cuda-wheels
  mkdir -p "$WHEELS"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64 -d "$WHEELS" \
    nvidia-cuda-nvcc==13.0.88 nvidia-cuda-runtime==13.0.96 nvidia-cuda-crt==13.0.88 \
    nvidia-nvvm==13.0.88 nvidia-cuda-cccl==13.0.85
  UNPACK=$(mktemp -d)
  for w in "$WHEELS"/nvidia_cuda_nvcc-13.0.88-*.whl "$WHEELS"/nvidia_cuda_runtime-13.0.96-*.whl \
           "$WHEELS"/nvidia_cuda_crt-13.0.88-*.whl "$WHEELS"/nvidia_nvvm-13.0.88-*.whl \
           "$WHEELS"/nvidia_cuda_cccl-13.0.85-*.whl; do
    python3 -m zipfile -e "$w" "$UNPACK"
  done
  rm -rf "$TK"
  mv "$UNPACK/nvidia/cu13" "$TK"
  rm -rf "$UNPACK"
  chmod +x "$TK"/bin/* "$TK"/bin/crt/* "$TK"/nvvm/bin/* 2>/dev/null || true
  ln -sfn lib "$TK/lib64"
  mkdir -p "$TK/targets/x86_64-linux"
  ln -sfn ../../include "$TK/targets/x86_64-linux/include"
  ln -sfn ../../lib "$TK/targets/x86_64-linux/lib"
  ln -sfn ../../lib "$TK/targets/x86_64-linux/lib64"
fi

LINK=$TK/link
if [ ! -f "$LINK/libcuda.so" ]; then
  echo "== generating the link-only libcuda.so stub from cuda.h"
  mkdir -p "$LINK"
  {
    echo '#include <cuda.h>' | gcc -E -P -I"$TK/include" -x c - \
      | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | sed 's/[[:space:]]*($//'
    # Older entry points that Rust driver-API bindings (cuda-driver-sys 0.3) still name;
    # the real driver exports them for compatibility.
    printf '%s\n' cuCtxCreate_v2 cuDeviceGetUuid cuDevicePrimaryCtxRelease cuDevicePrimaryCtxReset \
      cuDevicePrimaryCtxSetFlags cuEventElapsedTime cuGraphAddDependencies cuGraphAddKernelNode \
      cuGraphExecKernelNodeSetParams cuGraphExecUpdate cuGraphGetEdges cuGraphInstantiate \
      cuGraphKernelNodeGetParams cuGraphKernelNodeSetParams cuGraphNodeGetDependencies \
      cuGraphNodeGetDependentNodes cuGraphRemoveDependencies cuIpcOpenMemHandle cuMemAdvise \
      cuMemPrefetchAsync cuProfilerInitialize cuProfilerStart cuProfilerStop cuStreamBatchMemOp \
      cuStreamGetCaptureInfo cuStreamWaitValue32 cuStreamWaitValue64 cuStreamWriteValue32 \
      cuStreamWriteValue64
  } | sort -u | sed 's/.*/void &(void) {}/' > "$LINK/libcuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$LINK/libcuda.so" "$LINK/libcuda_stub.c"
  ln -sfn ../lib/libcudart_static.a "$LINK/libcudart.a"
fi

export PATH=$TK/bin:$PATH
export CUDA_PATH=$TK CUDA_HOME=$TK
export CUDA_LIB_DIR=$LINK CUDA_LIBRARY_PATH=$LINK
echo "== building zkinfer-cuda (CUDA_ARCH=$CUDA_ARCH)"
cargo build --profile "$PROFILE" --locked --manifest-path gpu/Cargo.toml --target-dir "$ROOT/target"
BIN=$ROOT/target/$([ "$PROFILE" = dev ] && echo debug || echo release)/zkinfer-cuda
if readelf -d "$BIN" | grep -q 'libcudart'; then
  echo "error: $BIN links libcudart dynamically; expected the static runtime" >&2
  exit 1
fi
echo "built $BIN (needs the NVIDIA driver's libcuda.so.1 at run time)"
