package io.spotserve.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.exec.ShardLayout;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaCheckpointWriter;
import io.spotserve.model.LlamaConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The LLaMA byte model of {@link ModelShape#of(String, LlamaConfig)} against real files and the executor's layout. */
class ModelShapeLlamaTest {

    /** Bytes of a llama2.c file that are weights: all but the header and the legacy RoPE tables. */
    static long weightBytesInFile(Path file, LlamaConfig c) throws Exception {
        return Files.size(file) - LlamaCheckpoint.HEADER_BYTES - (long) c.seqLen() * c.headSize() * Float.BYTES;
    }

    @Test
    void stories260kBytesAreTheFilesWeights() throws Exception {
        Path file = SharedData.stories260K();
        LlamaConfig c = LlamaCheckpoint.load(file).config();
        ModelShape s = ModelShape.of("stories260K", c);
        assertEquals(ModelShape.Family.LLAMA, s.family());
        assertFalse(s.separateClassifier());
        assertEquals(c.floatsPerLayer(), s.layerParameters());
        assertEquals(c.parameterCount(), s.parameters());
        assertEquals(weightBytesInFile(file, c), s.weightBytes());
        assertEquals(ModelContext.of("stories260K", c), ModelContext.of(s), "same byte model by either route");
    }

    @Test
    void separateClassifierIsCounted(@TempDir Path dir) throws Exception {
        LlamaConfig c = new LlamaConfig(32, 48, 3, 4, 2, 50, 16, false);
        Path file = LlamaCheckpointWriter.writeRandom(dir.resolve("untied.bin"), c, 11);
        ModelShape s = ModelShape.of("untied", c);
        assertTrue(s.separateClassifier());
        assertEquals(weightBytesInFile(file, c), s.weightBytes());
        assertEquals(ModelContext.of("untied", c), ModelContext.of(s));
    }

    @Test
    void deviceMemoryIsTheExecutorsBytesAtP1M1AndAnUpperBoundElsewhere() {
        // stories260K's shape, and an untied one whose vocabulary 50 does not split evenly over M = 4
        for (LlamaConfig c : List.of(new LlamaConfig(64, 172, 5, 8, 4, 512, 512, true),
                new LlamaConfig(32, 48, 5, 4, 4, 50, 128, false))) {
            CostModel cm = CostModel.of(shapeOnlyProfile(c), "s", c, Hardware.G4DN_12XLARGE);
            int batch = 4;
            int tokens = 96;
            ShardLayout one = ShardLayout.of(c, 1, 1);
            long executor = one.weightBytes(0, 0) + (long) batch * tokens * one.kvBytesPerPosition(0, 0);
            assertEquals(executor, cm.deviceMemoryBytes(1, 1, batch, 64, 32), c + " P=1 M=1 exact");
            for (List<Integer> stages : List.of(List.of(5), List.of(3, 2), List.of(2, 1, 1, 1), List.of(1, 1, 1, 1, 1))) {
                for (int m : new int[] {1, 2, 4}) {
                    ShardLayout l = ShardLayout.balanced(c, stages, m);
                    long worst = 0;
                    for (int st = 0; st < l.stages(); st++) {
                        for (int sh = 0; sh < m; sh++) {
                            worst = Math.max(worst, l.weightBytes(st, sh) + (long) batch * tokens * l.kvBytesPerPosition(st, sh));
                        }
                    }
                    long model = cm.deviceMemoryBytes(stages.size(), m, batch, 64, 32);
                    assertTrue(model >= worst, c + " " + l + ": cost model " + model + " < executor " + worst);
                    assertTrue(model <= 2 * worst, c + " " + l + ": cost model " + model + " far above executor " + worst);
                }
            }
        }
    }

    /** A one-cell profile: only the model shape matters for memory. */
    static LatencyProfile shapeOnlyProfile(LlamaConfig c) {
        return new LatencyProfile("s", c.layers(), c.layers(), 1.0, 0, 0, c.dim(), 4, 64, List.of(1.0),
                new java.util.TreeMap<>(java.util.Map.of(1, new java.util.TreeMap<>(java.util.Map.of(1,
                        new LatencyProfile.LayerTimes(1.0, 1.0))))));
    }

    @Test
    void deviceMemoryRuleNeedsWholeKvHeadsPerShard() {
        LlamaConfig c = new LlamaConfig(64, 128, 2, 8, 2, 64, 64, true); // 2 KV heads: M = 4 impossible
        LatencyProfile p = new LatencyProfile("gqa", 2, 2, 1.0, 0, 0, 64, 4, 8, List.of(1.0),
                new java.util.TreeMap<>(java.util.Map.of(4, new java.util.TreeMap<>(java.util.Map.of(1,
                        new LatencyProfile.LayerTimes(1.0, 1.0))))));
        CostModel cm = CostModel.of(p, "gqa", c, Hardware.G4DN_12XLARGE);
        assertFalse(cm.fits(MemoryRule.DEVICE_MEMORY, 1, 4, 1, 8, 8), "8 heads but 2 KV heads do not split 4 ways");
        assertTrue(cm.fits(MemoryRule.DEVICE_MEMORY, 1, 2, 1, 8, 8));
    }

    @Test
    void gptShapesKeepTheirFormula() {
        ModelShape opt = PaperModel.OPT_6_7B.shape();
        assertEquals(ModelShape.Family.GPT, opt.family());
        assertFalse(opt.separateClassifier());
        long h = 4096;
        long f = 16384;
        assertEquals(h * 3 * h + 3 * h + h * h + h + 2 * h * f + f + h + 4 * h, opt.layerParameters());
        assertEquals(51200 * h + 2048 * h + 2 * h, opt.embeddingParameters());
    }
}
