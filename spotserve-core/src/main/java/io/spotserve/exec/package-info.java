/**
 * The executor SPI (DESIGN.md §2.5, §3): the data plane behind the serving engine. {@link
 * io.spotserve.exec.ExecutorProvider} finds executors; an {@link io.spotserve.exec.Executor} creates {@link
 * io.spotserve.exec.Device}s (memory arenas) and {@link io.spotserve.exec.Pipeline}s sharded by a {@link
 * io.spotserve.exec.ShardLayout}; {@link io.spotserve.exec.ContextSlice}s in {@link io.spotserve.exec.SliceFormat}
 * are what context migration moves.
 */
package io.spotserve.exec;
