package io.spotserve.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ReferenceLlama;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.TestPipelines;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import java.io.IOException;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Device-to-device context migration ({@link CudaExecutor#copySlice}): re-slicing weights and running
 * sequences' KV caches from one layout into another without the host gives the same bytes as the
 * export/import path and the same greedy continuation as never moving. Tag "gpu".
 */
@Tag("gpu")
class CudaDeviceMigrationTest {
    private static LlamaCheckpoint ckpt;

    @BeforeAll
    static void load() throws IOException {
        Assumptions.assumeTrue(CudaExecutorProvider.gpuAvailable(), "no usable GPU: "
                + new CudaExecutorProvider().unusableReason());
        ckpt = LlamaCheckpoint.load(SharedData.stories260K());
    }

    @Test
    void weightsAndKvMoveDeviceToDeviceAndDecodingContinues() {
        LlamaConfig c = ckpt.config();
        int steps = 60;
        int moveAt = 25;
        int[] expected = new ReferenceLlama(ckpt).greedy(1, steps);
        ShardLayout from = ShardLayout.of(c, 1, 2);
        ShardLayout to = ShardLayout.balanced(c, List.of(3, 2), 4);
        try (CudaExecutor ex = new CudaExecutor(ExecutorOptions.defaults())) {
            Pipeline a = TestPipelines.loaded(ex, ckpt, from, "a", 1);
            Pipeline b = ex.createPipeline(to, TestPipelines.devices(ex, to, "b", 1 << 22), 1);
            a.openSequence(3, c.seqLen());
            int[] got = new int[steps];
            int token = 1;
            Pipeline cur = a;
            for (int pos = 0; pos < steps; pos++) {
                if (pos == moveAt) {
                    b.openSequence(3, c.seqLen());
                    for (int p = 0; p < to.stages(); p++) {
                        for (int m = 0; m < to.shards(); m++) {
                            List<ContextSlice> need = new java.util.ArrayList<>(to.weightSlices(p, m));
                            need.addAll(to.kvSlices(p, m, 3, a.length(3)));
                            for (ContextSlice want : need) {
                                for (int sp = 0; sp < from.stages(); sp++) {
                                    for (int sm = 0; sm < from.shards(); sm++) {
                                        for (ContextSlice have : held(from, sp, sm, a.length(3))) {
                                            Optional<ContextSlice> part = have.intersect(want);
                                            if (part.isPresent()) {
                                                ex.copySlice(a, sp, sm, b, p, m, part.get());
                                                byte[] viaHost = a.exportSlice(sp, sm, part.get());
                                                assertArrayEquals(viaHost, b.exportSlice(p, m, part.get()), part.get().toString());
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    assertTrue(b.isReady());
                    assertEquals(moveAt, b.length(3));
                    cur = b;
                }
                float[] logits = cur.decode(new long[] {3}, new int[] {token}, new int[] {pos})[0];
                token = ReferenceLlama.argmax(logits);
                got[pos] = token;
            }
            assertArrayEquals(expected, got);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ex.copySlice(a, 0, 0, b, 0, 0, new ContextSlice.FinalNorm()));
            assertTrue(e.getMessage().contains("does not own"), e.getMessage());
        }
    }

    private static List<ContextSlice> held(ShardLayout layout, int stage, int shard, int length) {
        List<ContextSlice> out = new java.util.ArrayList<>(layout.weightSlices(stage, shard));
        out.addAll(layout.kvSlices(stage, shard, 3, length));
        return out;
    }
}
