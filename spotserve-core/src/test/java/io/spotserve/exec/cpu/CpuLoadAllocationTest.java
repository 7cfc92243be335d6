package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.CheckpointSlices;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.SliceFormat;
import io.spotserve.exec.TestPipelines;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.RandomWeights;
import java.lang.management.ManagementFactory;
import javax.management.JMException;
import javax.management.ObjectName;
import org.junit.jupiter.api.Test;

/**
 * Loading weights from a checkpoint streams them into the executor's layout a chunk of rows at a time: the heap
 * gets the weights once, not a canonical copy of every slice besides (which doubled the allocation and, with the
 * 25M model, left ≈ 100 MB of garbage in the old generation of a CLI run). Measured as the bytes this thread
 * allocates during {@code loadWeights}, which does not depend on timing.
 */
class CpuLoadAllocationTest {
    /** About 3.3 M weights: layers of 786 K floats (3.1 MB), well above the 64 K-float load buffer. */
    private static final LlamaConfig C = new LlamaConfig(256, 768, 4, 8, 4, 1000, 64, false);

    /** Bytes this thread has allocated so far (HotSpot's threading MXBean attribute, read through JMX). */
    private static long allocatedBytes() throws JMException {
        return (Long) ManagementFactory.getPlatformMBeanServer().getAttribute(
                new ObjectName(ManagementFactory.THREAD_MXBEAN_NAME), "CurrentThreadAllocatedBytes");
    }

    @Test
    void loadingAllocatesTheWeightsOnceNotACopyOfEachSliceBesides() throws JMException {
        RandomWeights src = new RandomWeights(C, 3);
        for (boolean vector : new boolean[] {false, true}) {
            CpuExecutor ex = new CpuExecutor(ExecutorOptions.defaults().withVector(vector));
            for (ShardLayout layout : new ShardLayout[] {ShardLayout.of(C, 1, 1), ShardLayout.of(C, 2, 2)}) {
                Pipeline p = ex.createPipeline(layout, TestPipelines.devices(ex, layout, "d" + vector + layout.stages(), 1L << 30), 1);
                long weightBytes = 0;
                for (int s = 0; s < layout.stages(); s++) {
                    for (int m = 0; m < layout.shards(); m++) {
                        for (ContextSlice slice : layout.weightSlices(s, m)) {
                            weightBytes += slice.floats(C) * Float.BYTES;
                        }
                    }
                }
                long before = allocatedBytes();
                p.loadWeights(src);
                long allocated = allocatedBytes() - before;
                assertTrue(allocated < weightBytes * 5 / 4, layout + " vector " + vector + ": loading " + weightBytes
                        + " bytes of weights allocated " + allocated + " bytes");
                for (int s = 0; s < layout.stages(); s++) {
                    for (int m = 0; m < layout.shards(); m++) {
                        for (ContextSlice slice : layout.weightSlices(s, m)) {
                            assertArrayEquals(CheckpointSlices.read(src, slice),
                                    SliceFormat.decode(C, p.exportSlice(s, m, slice)).data(), 0f, layout + " " + slice);
                        }
                    }
                }
                p.close();
            }
        }
    }
}
