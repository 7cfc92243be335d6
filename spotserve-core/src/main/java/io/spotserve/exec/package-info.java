/**
 * The executor SPI (DESIGN.md §2.5, §3): the data plane behind the serving engine. {@link
 * io.spotserve.exec.ExecutorProvider} finds executors; an {@link io.spotserve.exec.Executor} creates {@link
 * io.spotserve.exec.Device}s (memory arenas) and {@link io.spotserve.exec.Pipeline}s sharded by a {@link
 * io.spotserve.exec.ShardLayout}; {@link io.spotserve.exec.ContextSlice}s in {@link io.spotserve.exec.SliceFormat}
 * are what context migration moves, each {@link io.spotserve.exec.Pipeline#stageSlice staged} at its source as a
 * {@link io.spotserve.exec.StagedSlice} and {@link io.spotserve.exec.Pipeline#importStaged imported} at its target
 * (in the caller's memory by default; a remote executor keeps it in the source worker and sends it from there).
 */
package io.spotserve.exec;
