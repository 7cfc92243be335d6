package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.model.LlamaCheckpoint;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Continuous batching: sequences at different positions decoded together (joining and leaving between steps)
 * give the same logits as each decoded alone; a prompt run as one block equals position-by-position prefill.
 */
public abstract class BatchDecodeContract {
    /** The executor under test (CPU, CUDA, ...). */
    protected abstract Executor executor(ExecutorOptions options);

    /**
     * How far a single unsharded decode step may be from run.c's float order: 0 for the CPU executor, which
     * follows it exactly; a GPU executor sums in parallel (tree reductions) and overrides this.
     */
    protected float runcOrderTolerance() {
        return 0f;
    }

    private static LlamaCheckpoint ckpt;

    @BeforeAll
    static void load() throws IOException {
        ckpt = LlamaCheckpoint.load(SharedData.stories260K());
    }

    /** Reference logits of one sequence fed {@code tokens} at positions 0, 1, ... */
    private static float[][] alone(int[] tokens) {
        ReferenceLlama ref = new ReferenceLlama(ckpt);
        float[][] out = new float[tokens.length][];
        for (int i = 0; i < tokens.length; i++) {
            out[i] = ref.forward(tokens[i], i).clone();
        }
        return out;
    }

    private static void assertClose(float[] expected, float[] actual, float tol, String where) {
        for (int i = 0; i < expected.length; i++) {
            assertTrue(Math.abs(expected[i] - actual[i]) <= tol, where + " logit " + i + ": " + expected[i] + " vs "
                    + actual[i]);
        }
    }

    @Test
    void sequencesJoiningAndLeavingMatchDecodingAlone() {
        Random random = new Random(5);
        int nSeq = 6;
        int[][] tokens = new int[nSeq][];
        float[][][] reference = new float[nSeq][][];
        int[] joinAt = new int[nSeq];
        for (int s = 0; s < nSeq; s++) {
            int len = 20 + random.nextInt(30);
            tokens[s] = random.ints(len, 0, 512).toArray();
            reference[s] = alone(tokens[s]);
            joinAt[s] = random.nextInt(25);
        }
        for (ShardLayout layout : List.of(ShardLayout.of(ckpt.config(), 1, 1), ShardLayout.balanced(ckpt.config(),
                List.of(3, 2), 2))) {
            for (boolean vector : new boolean[] {false, true}) {
                try (Executor ex = executor(new ExecutorOptions(2, vector))) {
                    Pipeline p = TestPipelines.loaded(ex, ckpt, layout, "b", 8);
                    // each sequence decoded alone by this pipeline: the expectation for the batched run
                    float[][][] expected = new float[nSeq][][];
                    for (int s = 0; s < nSeq; s++) {
                        p.openSequence(s, tokens[s].length);
                        expected[s] = new float[tokens[s].length][];
                        for (int i = 0; i < tokens[s].length; i++) {
                            expected[s][i] = p.decode(new long[] {s}, new int[] {tokens[s][i]}, new int[] {i})[0];
                            assertClose(reference[s][i], expected[s][i], 1e-4f, "alone vs run.c reference");
                        }
                        p.closeSequence(s);
                    }
                    int[] next = new int[nSeq];
                    int maxBatchSeen = 0;
                    for (int step = 0; ; step++) {
                        List<Integer> active = new ArrayList<>();
                        for (int s = 0; s < nSeq; s++) {
                            if (step == joinAt[s]) {
                                p.openSequence(100 + s, tokens[s].length);
                            }
                            if (step >= joinAt[s] && next[s] < tokens[s].length) {
                                active.add(s);
                            }
                        }
                        if (active.isEmpty() && step > 25) {
                            break;
                        }
                        if (active.isEmpty()) {
                            continue;
                        }
                        maxBatchSeen = Math.max(maxBatchSeen, active.size());
                        long[] ids = new long[active.size()];
                        int[] toks = new int[active.size()];
                        int[] pos = new int[active.size()];
                        for (int i = 0; i < active.size(); i++) {
                            int s = active.get(i);
                            ids[i] = 100 + s;
                            toks[i] = tokens[s][next[s]];
                            pos[i] = next[s];
                        }
                        float[][] logits = p.decode(ids, toks, pos);
                        for (int i = 0; i < active.size(); i++) {
                            int s = active.get(i);
                            assertClose(expected[s][next[s]], logits[i], 1e-5f, layout + " " + ex.name() + " seq " + s
                                    + " pos " + next[s]);
                            if (++next[s] == tokens[s].length) {
                                p.closeSequence(100 + s);
                            }
                        }
                    }
                    assertTrue(maxBatchSeen >= 5, "batches should reach 5+ sequences, saw " + maxBatchSeen);
                    assertTrue(p.sequences().isEmpty());
                    p.close();
                }
            }
        }
    }

    @Test
    void promptBlockEqualsPositionByPositionAndMixesWithDecode() {
        int[] prompt = new Random(9).ints(37, 0, 512).toArray();
        float[][] expected = alone(prompt);
        try (Executor ex = executor(new ExecutorOptions(2, false))) {
            Pipeline p = TestPipelines.loaded(ex, ckpt, ShardLayout.of(ckpt.config(), 1, 2), "pf", 16);
            p.openSequence(1, 64);
            float[] last = p.prefill(1, prompt, 0); // 3 chunks of at most 16
            assertEquals(prompt.length, p.length(1));
            assertClose(expected[prompt.length - 1], last, 1e-5f, "prefill");

            // one call mixing a 5-token prompt block of sequence 2 with a decode step of sequence 1
            p.openSequence(2, 64);
            long[] ids = {2, 2, 2, 1, 2, 2};
            int[] toks = {prompt[0], prompt[1], prompt[2], 9, prompt[3], prompt[4]};
            int[] pos = {0, 1, 2, 37, 3, 4};
            float[][] out = new float[6][];
            out[3] = new float[512];
            out[5] = new float[512];
            p.forward(ids, toks, pos, 6, out);
            assertClose(expected[4], out[5], 1e-5f, "block of sequence 2");
            int[] cont = prompt.clone();
            int[] extended = java.util.Arrays.copyOf(cont, 38);
            extended[37] = 9;
            assertClose(alone(extended)[37], out[3], 1e-5f, "decode of sequence 1");
        }
    }

    @Test
    void invalidStepsAreRejectedBeforeAnythingRuns() {
        try (Executor ex = executor(new ExecutorOptions(1, false))) {
            Pipeline p = TestPipelines.loaded(ex, ckpt, ShardLayout.of(ckpt.config(), 1, 1), "v", 2);
            p.openSequence(1, 10);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> p.decode(new long[] {1}, new int[] {3}, new int[] {1}));
            assertTrue(e.getMessage().contains("position 1 of sequence 1 outside [0, min(filled length 0"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> p.decode(new long[] {2}, new int[] {3}, new int[] {0}));
            assertTrue(e.getMessage().contains("sequence 2 is not open"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> p.decode(new long[] {1}, new int[] {512}, new int[] {0}));
            assertTrue(e.getMessage().contains("token 512 outside [0, vocab 512)"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> p.decode(new long[] {1, 1, 1}, new int[] {1, 2, 3}, new int[] {0, 1, 2}));
            assertTrue(e.getMessage().contains("batch of 3 entries outside [1, maxBatch 2]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> p.openSequence(1, 4));
            assertTrue(e.getMessage().contains("sequence 1 is already open"), e.getMessage());
            assertEquals(0, p.length(1));
            float[] logits = p.decode(new long[] {1}, new int[] {1}, new int[] {0})[0];
            assertArrayEquals(alone(new int[] {1})[0], logits, runcOrderTolerance());
        }
    }
}
