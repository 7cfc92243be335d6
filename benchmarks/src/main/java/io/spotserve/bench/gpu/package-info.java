/**
 * The 1B-parameter GPU decode benchmark of issue 6: a random TinyLlama-shaped model generated slice by slice
 * ({@link io.spotserve.bench.gpu.RandomLlamaWeights}), the decode harness with the measured copy bandwidth
 * ({@link io.spotserve.bench.gpu.GpuDecodeBench}, {@link io.spotserve.bench.gpu.CopyBandwidth}), the bandwidth
 * bound ({@link io.spotserve.bench.gpu.DecodeBound}) and the comparison with PyTorch eager
 * ({@link io.spotserve.bench.gpu.DecodeComparison}); run by {@code spotserve-cuda/gpu-check.sh run}, see
 * benchmarks/notes/cuda.md.
 */
package io.spotserve.bench.gpu;
