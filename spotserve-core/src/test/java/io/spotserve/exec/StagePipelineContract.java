package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.plan.DeviceId;
import io.spotserve.testing.SharedData;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Partial pipelines ({@link Executor#createStages}), the executor side of a pipeline whose stages run in different
 * worker processes: one per stage, chained through {@link Pipeline#forwardStage} as the workers chain them, must
 * decode stories260K exactly like a whole pipeline, hold memory only on their own devices, and refuse what is not
 * theirs. Every executor that serves remote stages passes it (CPU; CUDA on a GPU).
 */
public abstract class StagePipelineContract {
    /** The executor under test (CPU, CUDA, ...). */
    protected abstract Executor executor(ExecutorOptions options);

    private static LlamaCheckpoint ckpt;

    @BeforeAll
    static void load() throws IOException {
        ckpt = LlamaCheckpoint.load(SharedData.stories260K());
    }

    /** One partial pipeline per stage, weights loaded from the checkpoint. */
    private static List<Pipeline> perStage(Executor ex, ShardLayout layout, String prefix) {
        List<Pipeline> out = new ArrayList<>();
        for (int p = 0; p < layout.stages(); p++) {
            List<Device> devices = new ArrayList<>();
            for (int m = 0; m < layout.shards(); m++) {
                devices.add(ex.createDevice(new DeviceId(prefix + p, m), 1L << 28));
            }
            Pipeline stage = ex.createStages(layout, new IndexRange(p, p + 1), devices, 4);
            stage.loadWeights(ckpt);
            out.add(stage);
        }
        return out;
    }

    private static int[] greedy(List<Pipeline> stages, long seq, int first, int steps) {
        for (Pipeline p : stages) {
            p.openSequence(seq, steps);
        }
        int dim = ckpt.config().dim();
        int[] out = new int[steps];
        int token = first;
        for (int pos = 0; pos < steps; pos++) {
            float[] hidden = new float[dim];
            float[][] logits = new float[1][ckpt.config().vocabSize()];
            for (int p = 0; p < stages.size(); p++) {
                stages.get(p).forwardStage(p, new long[] {seq}, new int[] {token}, new int[] {pos}, 1, hidden, logits);
            }
            token = ReferenceLlama.argmax(logits[0]);
            out[pos] = token;
        }
        return out;
    }

    @Test
    void chainedStagePipelinesDecodeLikeTheReference() {
        try (Executor ex = executor(new ExecutorOptions(2, true))) {
            for (ShardLayout layout : List.of(ShardLayout.balanced(ckpt.config(), List.of(3, 2), 1),
                    ShardLayout.balanced(ckpt.config(), List.of(3, 2), 2),
                    ShardLayout.balanced(ckpt.config(), List.of(2, 1, 1, 1), 1))) {
                List<Pipeline> stages = perStage(ex, layout, layout.stages() + "x" + layout.shards() + "-");
                assertArrayEquals(StoriesGreedyContract.FIRST_40, Arrays.copyOf(greedy(stages, 3, 1, 40), 40),
                        layout.toString());
                for (int p = 0; p < stages.size(); p++) {
                    assertEquals(40, stages.get(p).length(3), "stage " + p + " advanced its sequence");
                    stages.get(p).close();
                }
            }
        }
    }

    /**
     * A batch of sequences at different positions, some entries without logits: the chained stages give the whole
     * pipeline's logits, entry by entry (the same kernels in the same order: equal floats).
     */
    @Test
    void aBatchedStageStepGivesTheWholePipelinesLogits() {
        try (Executor ex = executor(new ExecutorOptions(2, true))) {
            ShardLayout layout = ShardLayout.balanced(ckpt.config(), List.of(2, 3), 2);
            Pipeline whole = TestPipelines.loaded(ex, ckpt, layout, "whole", 4);
            List<Pipeline> stages = perStage(ex, layout, "part");
            long[] seqs = {11, 12, 13};
            int[] prompt = {1, 403, 407, 261, 378, 432};
            int dim = ckpt.config().dim();
            int vocab = ckpt.config().vocabSize();
            List<Pipeline> all = new ArrayList<>(stages);
            all.add(whole);
            for (Pipeline p : all) {
                for (long s : seqs) {
                    p.openSequence(s, 16);
                }
            }
            // sequence 11 starts at round 0, 12 at round 2, 13 at round 4: their steps are at different positions
            int[] done = new int[seqs.length];
            for (int round = 0; round < 8; round++) {
                List<Integer> entries = new ArrayList<>();
                for (int i = 0; i < seqs.length; i++) {
                    if (round >= 2 * i) {
                        entries.add(i);
                    }
                }
                int count = entries.size();
                long[] s = new long[count];
                int[] tokens = new int[count];
                int[] positions = new int[count];
                float[][] wholeLogits = new float[count][];
                float[][] stageLogits = new float[count][];
                for (int b = 0; b < count; b++) {
                    int i = entries.get(b);
                    s[b] = seqs[i];
                    tokens[b] = prompt[done[i] % prompt.length];
                    positions[b] = done[i];
                    if (b != 1) { // the second entry wants no logits (a prompt token that is not the last)
                        wholeLogits[b] = new float[vocab];
                        stageLogits[b] = new float[vocab];
                    }
                    done[i]++;
                }
                whole.forward(s, tokens, positions, count, wholeLogits);
                float[] hidden = new float[count * dim];
                for (int p = 0; p < stages.size(); p++) {
                    stages.get(p).forwardStage(p, s, tokens, positions, count, hidden, stageLogits);
                }
                for (int b = 0; b < count; b++) {
                    assertArrayEquals(wholeLogits[b], stageLogits[b], "round " + round + " entry " + b);
                }
            }
            for (Pipeline p : all) {
                p.close();
            }
        }
    }

    @Test
    void aPartialPipelineHoldsOnlyItsStagesAndRefusesTheOthers() {
        try (Executor ex = executor(new ExecutorOptions(1, false))) {
            ShardLayout layout = ShardLayout.balanced(ckpt.config(), List.of(3, 2), 1);
            Device d = ex.createDevice(new DeviceId("w", 0), 1L << 28);
            Pipeline second = ex.createStages(layout, new IndexRange(1, 2), List.of(d), 2);
            assertEquals(new IndexRange(1, 2), second.hostedStages());
            second.loadWeights(ckpt);
            assertTrue(second.isReady());
            assertEquals(layout.weightBytes(1, 0), d.usedBytes(), "only stage 1's weights are on the device");
            assertThrows(IllegalArgumentException.class, () -> second.hasAllWeights(0, 0));
            assertThrows(IllegalArgumentException.class, () -> second.exportSlice(0, 0, layout.weightSlices(0, 0).get(0)));
            second.openSequence(9, 8);
            assertEquals(layout.kvBytesPerPosition(1, 0) * 8, d.usedBytes() - layout.weightBytes(1, 0));
            IllegalStateException whole = assertThrows(IllegalStateException.class,
                    () -> second.decode(new long[] {9}, new int[] {1}, new int[] {0}));
            assertTrue(whole.getMessage().contains("forwardStage"), whole.getMessage());
            assertThrows(IllegalArgumentException.class, () -> second.forwardStage(0, new long[] {9}, new int[] {1},
                    new int[] {0}, 1, new float[ckpt.config().dim()], new float[1][]));
            IllegalArgumentException shortHidden = assertThrows(IllegalArgumentException.class,
                    () -> second.forwardStage(1, new long[] {9}, new int[] {1}, new int[] {0}, 1, new float[3],
                            new float[1][]));
            assertTrue(shortHidden.getMessage().contains("hidden"), shortHidden.getMessage());
            assertEquals(0, second.length(9), "a refused step computes nothing");
            second.releaseSlice(1, 0, new ContextSlice.FinalNorm());
            assertFalse(second.isReady());
            second.close();
            assertEquals(0, d.usedBytes());
        }
    }

    @Test
    void emptyOrOutOfRangeStagesAreRefused() {
        try (Executor ex = executor(new ExecutorOptions(1, false))) {
            ShardLayout layout = ShardLayout.balanced(ckpt.config(), List.of(3, 2), 1);
            Device d = ex.createDevice(new DeviceId("w", 0), 1L << 20);
            assertThrows(IllegalArgumentException.class, () -> ex.createStages(layout, new IndexRange(1, 1), List.of(), 2));
            assertThrows(IllegalArgumentException.class, () -> ex.createStages(layout, new IndexRange(1, 3), List.of(d, d), 2));
            assertThrows(IllegalArgumentException.class, () -> ex.createStages(layout, new IndexRange(0, 2), List.of(d), 2));
        }
    }
}
