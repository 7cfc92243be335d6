// Stand-in for CUDA's <cuda_fp16.h> when the kernels are compiled for the CPU emulation test: the include
// path puts this directory first, so spotserve_kernels.cu's `#include <cuda_fp16.h>` gets the shim.
#pragma once
#include "cuda_cpu_shim.h"
