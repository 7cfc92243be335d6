/**
 * The pure-Java CPU executor: {@link io.spotserve.exec.cpu.CpuExecutor} and its provider. Everything else here
 * is package-private: the per-position state and kernels ({@code StageShard}), the pipeline driver, the scalar
 * and Vector API kernels and the worker pool.
 */
package io.spotserve.exec.cpu;
