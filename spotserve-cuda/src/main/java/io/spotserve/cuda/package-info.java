/**
 * GPU data plane (issue 6): a CUDA executor behind the core executor SPI, discovered through ServiceLoader.
 * Only the CUDA driver is needed at run time: JCuda's driver binding loads our own kernels from PTX
 * (src/main/cuda, compiled by build-ptx.sh) with cuModuleLoadData; cuBLAS is an optional accelerator. When no
 * driver or GPU is present, {@link io.spotserve.cuda.CudaExecutorProvider#isUsable()} is false and the engine
 * falls back to the CPU executor. See the module's README.md for what a machine needs.
 */
package io.spotserve.cuda;
