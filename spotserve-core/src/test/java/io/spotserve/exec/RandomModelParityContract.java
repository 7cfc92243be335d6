package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaCheckpointWriter;
import io.spotserve.model.LlamaConfig;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Random-weight checkpoints written by {@link LlamaCheckpointWriter} (8 layers, so P = 4 splits evenly; with and
 * without grouped-query attention; with a separate classifier): every (P, M) in {1, 2, 4}² reproduces the
 * reference's greedy tokens, and its logits stay within float rounding of the reference's.
 */
public abstract class RandomModelParityContract {
    /** The executor under test (CPU, CUDA, ...). */
    protected abstract Executor executor(ExecutorOptions options);

    /**
     * Whether unsharded scalar runs must be bit-identical to run.c's float order: true for the CPU executor; a
     * GPU executor sums in parallel (tree reductions) and is held only to the 1e-4 logit bound.
     */
    protected boolean followsRuncOrder() {
        return true;
    }

    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(ints = {8, 4})
    void everyLayoutMatchesTheReference(int kvHeads) throws IOException {
        LlamaConfig config = new LlamaConfig(64, 128, 8, 8, kvHeads, 512, 128, kvHeads == 8);
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(
                LlamaCheckpointWriter.writeRandom(dir.resolve("r" + kvHeads + ".bin"), config, 42 + kvHeads));
        ReferenceLlama ref = new ReferenceLlama(ckpt);
        int steps = 48;
        int first = 17;
        int[] refTokens = new int[steps];
        float[][] refLogits = new float[steps][];
        int token = first;
        for (int pos = 0; pos < steps; pos++) {
            refLogits[pos] = ref.forward(token, pos).clone();
            token = ReferenceLlama.argmax(refLogits[pos]);
            refTokens[pos] = token;
        }
        for (boolean vector : new boolean[] {false, true}) {
            try (Executor ex = executor(new ExecutorOptions(2, vector))) {
                for (ShardLayout layout : TestPipelines.layouts(config)) {
                    assertEquals(8 / layout.stages(), layout.layers(0).length());
                    Pipeline p = TestPipelines.loaded(ex, ckpt, layout, layout.toString(), 2);
                    p.openSequence(1, steps);
                    token = first;
                    for (int pos = 0; pos < steps; pos++) {
                        float[] logits = p.decode(new long[] {1}, new int[] {token}, new int[] {pos})[0];
                        float maxDiff = 0;
                        for (int v = 0; v < logits.length; v++) {
                            maxDiff = Math.max(maxDiff, Math.abs(logits[v] - refLogits[pos][v]));
                        }
                        String where = layout + " " + ex.name() + " pos " + pos;
                        assertTrue(maxDiff < 1e-4f, where + ": logits differ by " + maxDiff);
                        if (followsRuncOrder() && !vector && layout.shards() == 1) {
                            assertEquals(0f, maxDiff, where + ": unsharded scalar must be bit-identical to run.c order");
                        }
                        token = ReferenceLlama.argmax(logits);
                        assertEquals(refTokens[pos], token, where);
                    }
                    p.close();
                }
            }
        }
    }
}
