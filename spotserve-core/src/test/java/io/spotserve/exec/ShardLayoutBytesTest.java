package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaConfig;
import org.junit.jupiter.api.Test;

/** Weight bytes at the executor's real size per weight: every position's float count times the bytes. */
class ShardLayoutBytesTest {
    @Test
    void weightBytesScaleWithBytesPerWeight() {
        LlamaConfig c = new LlamaConfig(64, 172, 5, 8, 4, 512, 512, true);
        for (ShardLayout l : TestPipelines.layouts(c)) {
            for (int s = 0; s < l.stages(); s++) {
                for (int m = 0; m < l.shards(); m++) {
                    long floats = l.weightBytes(s, m) / 4;
                    assertEquals(floats * 2, l.weightBytes(s, m, 2), l + " " + s + "/" + m);
                    assertEquals(l.weightBytes(s, m), l.weightBytes(s, m, 4));
                }
            }
        }
        assertThrows(IllegalArgumentException.class, () -> ShardLayout.of(c, 1, 1).weightBytes(0, 0, 0));
        // the CPU executor computes fp16 weights from floats: it stores 4 bytes per weight whatever the precision
        try (Executor cpu = new CpuExecutor(ExecutorOptions.defaults().withWeights(WeightPrecision.FP16))) {
            assertEquals(4, cpu.storedBytesPerWeight());
        }
    }
}
