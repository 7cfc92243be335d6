package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.model.LlamaConfig;
import java.util.List;
import org.junit.jupiter.api.Test;

class ShardLayoutTest {
    private static final LlamaConfig STORIES = new LlamaConfig(64, 172, 5, 8, 4, 512, 512, true);

    private static void assertRejected(String fragment, Runnable r) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, r::run);
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }

    @Test
    void rejectsImpossibleLayoutsNamingTheValues() {
        assertRejected("P = 2 does not divide the model's 5 layers", () -> ShardLayout.of(STORIES, 2, 1));
        assertRejected("P = 6 pipeline stages exceed the model's 5 layers", () -> ShardLayout.of(STORIES, 6, 1));
        assertRejected("M = 8 tensor shards do not divide n_kv_heads 4", () -> ShardLayout.of(STORIES, 1, 8));
        assertRejected("M = 3 tensor shards do not divide n_heads 8", () -> ShardLayout.of(STORIES, 1, 3));
        assertRejected("M = 4 tensor shards do not divide hidden_dim 170", () -> ShardLayout.of(new LlamaConfig(64, 170, 5, 8, 4, 512, 512,
                true), 1, 4));
        assertRejected("sum to 4 but the model has 5 layers", () -> ShardLayout.balanced(STORIES, List.of(2, 1, 1), 1));
        assertRejected("stage 1 has 0 layers", () -> ShardLayout.balanced(STORIES, List.of(5, 0), 1));
        assertRejected("M (tensor shards) must be >= 1, was 0", () -> ShardLayout.of(STORIES, 1, 0));
    }

    @Test
    void balancedLayoutGivesContiguousRanges() {
        ShardLayout l = ShardLayout.balanced(STORIES, List.of(2, 1, 1, 1), 4);
        assertEquals(IndexRange.of(0, 2), l.layers(0));
        assertEquals(IndexRange.of(2, 3), l.layers(1));
        assertEquals(IndexRange.of(4, 5), l.layers(3));
        assertEquals(0, l.stageOf(1));
        assertEquals(3, l.stageOf(4));
        assertEquals(IndexRange.of(2, 4), l.heads(1));
        assertEquals(IndexRange.of(1, 2), l.kvHeads(1));
        assertEquals(IndexRange.of(43, 86), l.hidden(1));
        assertEquals(IndexRange.of(384, 512), l.vocab(3));
    }

    @Test
    void positionsPartitionTheModelExactly() {
        for (ShardLayout l : TestPipelines.layouts(STORIES)) {
            long bytes = 0;
            for (int p = 0; p < l.stages(); p++) {
                for (int m = 0; m < l.shards(); m++) {
                    bytes += l.weightBytes(p, m);
                }
            }
            // every parameter once, except RMSNorm weights (replicated M times) and a shared classifier (held
            // by stage 0 as embedding and by the last stage as classifier when those differ)
            long dim = STORIES.dim();
            long expected = STORIES.parameterCount() + (l.stages() > 1 ? (long) STORIES.vocabSize() * dim : 0)
                    + (l.shards() - 1L) * (2 * dim * STORIES.layers() + dim);
            assertEquals(expected * 4, bytes, l.toString());
        }
    }

    @Test
    void slicesIntersectAsRanges() {
        ShardLayout m2 = ShardLayout.of(STORIES, 1, 2);
        ShardLayout m4 = ShardLayout.of(STORIES, 1, 4);
        ContextSlice a = m2.weightSlices(0, 1).get(2); // layer 1 of shard 1 of 2
        ContextSlice b = m4.weightSlices(0, 3).get(2); // layer 1 of shard 3 of 4
        assertEquals(new ContextSlice.LayerWeights(1, IndexRange.of(6, 8), IndexRange.of(129, 172)),
                a.intersect(b).orElseThrow());
        assertTrue(a.covers(b));
        assertTrue(a.intersect(m4.weightSlices(0, 0).get(2)).isEmpty());
        assertTrue(new ContextSlice.KvCache(7, 2, IndexRange.of(0, 4), 10)
                .covers(new ContextSlice.KvCache(7, 2, IndexRange.of(1, 2), 5)));
        assertTrue(new ContextSlice.KvCache(7, 2, IndexRange.of(0, 4), 10)
                .intersect(new ContextSlice.KvCache(8, 2, IndexRange.of(0, 4), 10)).isEmpty());
    }

    /** The (P, M) rule: floor(p·L/P) boundaries, the later stages take the extra layers; planner and engine agree. */
    @Test
    void splitGivesTheExtraLayersToTheLaterStagesAsThePlannerPricesThem() {
        assertEquals(List.of(1, 1, 1, 2), counts(ShardLayout.split(STORIES, 4, 1)));
        assertEquals(List.of(2, 3), counts(ShardLayout.split(STORIES, 2, 2)));
        LlamaConfig ten = new LlamaConfig(64, 172, 10, 8, 4, 512, 512, true);
        assertEquals(List.of(2, 3, 2, 3), counts(ShardLayout.split(ten, 4, 1)));
        for (int layers = 1; layers <= 48; layers++) {
            LlamaConfig c = new LlamaConfig(64, 172, layers, 8, 4, 512, 512, true);
            io.spotserve.plan.ModelContext model = io.spotserve.plan.ModelContext.of("l" + layers, c);
            for (int p = 1; p <= layers; p++) {
                ShardLayout l = ShardLayout.split(c, p, 1);
                int sum = 0;
                for (int st = 0; st < p; st++) {
                    assertEquals(model.firstLayer(st, p), l.layers(st).from(), "L=" + layers + " P=" + p);
                    assertEquals(ShardLayout.firstLayer(layers, st, p), l.layers(st).from());
                    int n = l.layers(st).length();
                    assertTrue(n == layers / p || n == layers / p + 1, "balanced: L=" + layers + " P=" + p);
                    sum += n;
                }
                assertEquals(layers, sum);
            }
        }
        assertRejected("P = 6 pipeline stages cannot split the model's 5 layers", () -> ShardLayout.split(STORIES, 6, 1));
    }

    private static List<Integer> counts(ShardLayout l) {
        List<Integer> out = new java.util.ArrayList<>();
        for (int st = 0; st < l.stages(); st++) {
            out.add(l.layers(st).length());
        }
        return out;
    }
}
