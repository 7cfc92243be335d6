package io.spotserve.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import org.junit.jupiter.api.Test;

class ModelContextTest {

    @Test
    void realCheckpointBytesAddUpToItsParameters() throws Exception {
        LlamaConfig c = LlamaCheckpoint.load(SharedData.stories260K()).config();
        ModelContext m = ModelContext.of("stories260K", c);
        // the classifier slice re-counts the shared embedding matrix, which the last stage needs as well
        long counted = m.layers() * m.layerWeightBytes() + m.embeddingBytes() + m.classifierBytes()
                - (c.sharedClassifier() ? m.embeddingBytes() : 0);
        assertEquals(c.parameterCount() * 4, counted);
        assertEquals(2L * c.kvDim() * 4 * c.layers(), m.kvBytesPerTokenPerLayer() * m.layers());
        assertEquals(c.kvBytesPerPosition(), m.kvBytesPerTokenPerLayer() * m.layers());
    }

    /** Table 1 sizes (GB = GiB of FP32 weights): 25.0, 74.5, 111.8. */
    @Test
    void paperModelsMatchTable1Sizes() {
        double gib = 1L << 30;
        for (Object[] row : new Object[][] {{ModelContext.opt6_7b(), 25.0}, {ModelContext.gpt20b(), 74.5}, {ModelContext.llama30b(), 111.8}}) {
            ModelContext m = (ModelContext) row[0];
            double size = (m.layers() * m.layerWeightBytes() + m.embeddingBytes() + m.classifierBytes()) / gib;
            assertTrue(Math.abs(size - (double) row[1]) / (double) row[1] < 0.05, m.name() + " is " + size + " GiB");
        }
    }

    @Test
    void stagesSplitLayersWithoutDroppingAny() {
        ModelContext m = ModelContext.gpt20b();
        assertEquals(0, m.firstLayer(0, 3));
        assertEquals(14, m.firstLayer(1, 3));
        assertEquals(29, m.firstLayer(2, 3));
        assertEquals(44, m.firstLayer(3, 3));
        for (int p = 1; p <= 44; p++) {
            int count = 0;
            for (int s = 0; s < p; s++) {
                int n = m.firstLayer(s + 1, p) - m.firstLayer(s, p);
                assertTrue(n == 44 / p || n == 44 / p + 1, "P=" + p + " stage " + s + " has " + n + " layers");
                count += n;
            }
            assertEquals(44, count);
            for (int l = 0; l < 44; l++) {
                int s = m.stageOf(l, p);
                assertTrue(m.firstLayer(s, p) <= l && l < m.firstLayer(s + 1, p));
            }
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.firstLayer(0, 45));
        assertTrue(e.getMessage().contains("P=45") && e.getMessage().contains("44 layers"), e.getMessage());
    }

    @Test
    void shardRangesAreExactAndAdditive() {
        ShardRange a = ShardRange.ofShard(1, 2);
        assertEquals(new ShardRange(2, 4, 4), a);
        assertEquals(null, ShardRange.ofShard(1, 2).intersect(ShardRange.ofShard(0, 3)) == null ? null : "overlap");
        assertEquals(new ShardRange(2, 3, 6), ShardRange.ofShard(0, 2).intersect(ShardRange.ofShard(1, 3)));
        assertEquals(new ShardRange(3, 4, 6), ShardRange.ofShard(1, 2).intersect(ShardRange.ofShard(1, 3)));
        long total = 1_000_003;
        for (int m = 1; m <= 12; m++) {
            long sum = 0;
            for (int s = 0; s < m; s++) {
                sum += ShardRange.ofShard(s, m).bytesOf(total);
            }
            assertEquals(total, sum, "shards of " + m);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ShardRange.ofShard(3, 3));
        assertTrue(e.getMessage().contains("shard 3 of 3"), e.getMessage());
    }
}
