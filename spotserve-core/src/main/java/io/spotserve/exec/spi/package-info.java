/**
 * For executor implementors, not for applications: the backend-independent half of an executor (SPI
 * checks, device arenas, pipeline bookkeeping) that the CPU executor ({@code io.spotserve.exec.cpu}) and the
 * CUDA executor ({@code io.spotserve.cuda}) share, so both enforce the same rules with the same error
 * messages. Applications program against {@link io.spotserve.exec.Executor} and
 * {@link io.spotserve.exec.Pipeline} only; types here may change with the backends.
 */
package io.spotserve.exec.spi;
