package io.spotserve.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.TestPipelines;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaCheckpointWriter;
import io.spotserve.model.LlamaConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * CUDA graph replay of the decode step ({@link StepGraphs}) computes exactly what kernel-by-kernel launches do:
 * the same logits bit for bit over steps whose batch, logits rows and attention bucket change, one capture per
 * shape, and a recapture after a weight slice is re-imported at a new address. Tag "gpu".
 */
@Tag("gpu")
class CudaGraphsTest {
    @BeforeAll
    static void requireGpu() {
        Assumptions.assumeTrue(CudaExecutorProvider.gpuAvailable(), "no usable GPU: "
                + new CudaExecutorProvider().unusableReason());
    }

    @TempDir
    Path dir;

    /** Decodes a fixed schedule (batch 1, then 3 with one entry not wanting logits, then 2) and returns all logits. */
    private static List<float[]> run(Pipeline p, boolean reimport, LlamaCheckpoint ckpt) {
        List<float[]> out = new ArrayList<>();
        int vocab = p.config().vocabSize();
        for (long s = 1; s <= 3; s++) {
            p.openSequence(s, 300);
        }
        int[] pos = new int[4];
        for (int step = 0; step < 290; step++) {
            if (reimport && step == 150) { // new storage addresses: graphs must be recaptured
                ContextSlice w = p.layout().weightSlices(0, 0).get(1);
                byte[] bytes = p.exportSlice(0, 0, w);
                p.releaseSlice(0, 0, w);
                p.importSlice(0, 0, bytes);
            }
            int n = step < 100 ? 1 : step < 200 ? 3 : 2;
            long[] seqs = new long[n];
            int[] toks = new int[n];
            int[] ps = new int[n];
            float[][] logits = new float[n][];
            for (int b = 0; b < n; b++) {
                seqs[b] = b + 1;
                toks[b] = (step * 13 + b * 7) % vocab;
                ps[b] = pos[b + 1]++;
                logits[b] = b == 1 && n == 3 ? null : new float[vocab];
            }
            p.forward(seqs, toks, ps, n, logits);
            for (float[] l : logits) {
                if (l != null) {
                    out.add(l);
                }
            }
        }
        return out;
    }

    @ParameterizedTest
    @CsvSource({"1, 1, FP32", "1, 1, FP16", "2, 2, FP32", "2, 2, FP16"})
    void replayedStepsEqualKernelByKernelSteps(int stages, int shards, WeightPrecision weights) throws IOException {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(LlamaCheckpointWriter.writeRandom(dir.resolve("g.bin"),
                new LlamaConfig(64, 160, 4, 8, 4, 300, 512, false), 5));
        ShardLayout layout = ShardLayout.of(ckpt.config(), stages, shards);
        ExecutorOptions options = ExecutorOptions.defaults().withWeights(weights);
        List<float[]> eager;
        String before = System.getProperty(CudaExecutor.GRAPHS_PROPERTY);
        System.setProperty(CudaExecutor.GRAPHS_PROPERTY, "false");
        try (CudaExecutor ex = new CudaExecutor(options)) {
            CudaPipeline p = (CudaPipeline) TestPipelines.loaded(ex, ckpt, layout, "eager", 3);
            eager = run(p, true, ckpt);
            assertEquals(0, p.graphStats()[1], "graphs disabled by the property: no step replayed");
        } finally {
            if (before == null) {
                System.clearProperty(CudaExecutor.GRAPHS_PROPERTY);
            } else {
                System.setProperty(CudaExecutor.GRAPHS_PROPERTY, before);
            }
        }
        try (CudaExecutor ex = new CudaExecutor(options)) {
            CudaPipeline p = (CudaPipeline) TestPipelines.loaded(ex, ckpt, layout, "graph", 3);
            List<float[]> replayed = run(p, true, ckpt);
            assertEquals(eager.size(), replayed.size());
            for (int i = 0; i < eager.size(); i++) {
                assertArrayEquals(eager.get(i), replayed.get(i), "logits row " + i + " of " + layout + " " + weights);
            }
            long[] stats = p.graphStats();
            assertNotNull(stats, "every position is on GPU 0: steps should run as graphs");
            assertEquals(290, stats[1], "every step replayed a graph");
            // shapes: batch 1 (buckets 256, 512 floats) ; batch 3 (512, recaptured after the re-import) ; batch 2
            assertTrue(stats[0] >= 4 && stats[0] <= 8, "captures " + stats[0]);
        }
    }
}
