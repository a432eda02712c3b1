# Sourced (`. scripts/cuda-env.sh`): makes the CUDA 13.0 toolkit that compiles the GPU
# build `zkinfer-cuda` available, on a machine without CUDA, from the registries only:
#   - nvcc, runtime, crt, nvvm and cccl from PyPI wheels, unpacked once into one toolkit
#     tree under target/cuda-13.0 (bin, include, lib, nvvm; lib64 and targets/x86_64-linux
#     as links, the layout nvcc.profile expects);
#   - cudart linked statically (a link directory holding only libcudart.a);
#   - a link-only libcuda.so stub exporting the driver API's `cu*` symbols (no wheel
#     ships one); at run time the binary uses the driver's real libcuda.so.1;
# then exports PATH, CUDA_PATH/CUDA_HOME, CUDA_LIB_DIR and CUDA_ARCH (default 90:
# H100/H200; e.g. CUDA_ARCH=80,89,90). `cargo build --workspace` and `cargo test
# --workspace` need this; plain `cargo build`/`cargo test` (default members) do not.
ZKINFER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TK=$ZKINFER_ROOT/target/cuda-13.0
export CUDA_ARCH=${CUDA_ARCH:-90}

if [ ! -x "$TK/bin/nvcc" ]; then
  echo "== fetching CUDA 13.0 from PyPI wheels"
  WHEELS=$ZKINFER_ROOT/target/cuda-wheels
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
