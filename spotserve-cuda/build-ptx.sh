#!/usr/bin/env bash
# Regenerates the committed PTX from src/main/cuda/*.cu with the local nvcc (CUDA 13 here).
# Target compute_75 (Turing, e.g. T4): the lowest virtual architecture CUDA 13's nvcc still accepts, so one
# PTX file runs on every GPU since Turing; the driver JIT-compiles it for the actual GPU (sm_80 A100,
# sm_90 H100, ...) at cuModuleLoadData time. PTX from CUDA 13 carries ISA version 9.0, which needs a
# driver of the CUDA 13 generation (>= 580); see README.md.
# Usage: spotserve-cuda/build-ptx.sh            (writes the .ptx files)
#        spotserve-cuda/build-ptx.sh --check    (exit 1 if a committed .ptx differs from a fresh build)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
NVCC="${NVCC:-$(command -v nvcc || ls -d /usr/local/cuda*/bin/nvcc 2>/dev/null | head -1)}"
[ -x "$NVCC" ] || { echo "nvcc not found (set NVCC=/path/to/nvcc)" >&2; exit 2; }
ARCH="${PTX_ARCH:-compute_75}"
out="$here/src/main/resources/io/spotserve/cuda"
mkdir -p "$out"
status=0
for cu in "$here"/src/main/cuda/*.cu; do
  name="$(basename "$cu" .cu)"
  tmp="$(mktemp)"
  "$NVCC" -ptx -arch="$ARCH" -O3 -std=c++17 -o "$tmp" "$cu"
  if [ "${1:-}" = "--check" ]; then
    if ! cmp -s "$tmp" "$out/$name.ptx"; then echo "stale: $out/$name.ptx differs from $cu" >&2; status=1; fi
    rm -f "$tmp"
  else
    mv "$tmp" "$out/$name.ptx"
    echo "wrote $out/$name.ptx"
  fi
done
exit $status
