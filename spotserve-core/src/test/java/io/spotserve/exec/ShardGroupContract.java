package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaCheckpointWriter;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import io.spotserve.testing.SharedData;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tensor groups split over pipelines ({@link Executor#createShardGroup}, {@link TensorReducer}): every (P, M) layout
 * with M &ge; 2, its groups split into 2 parts (and 4 where M &ge; 4), each part its own pipelines on its own executor
 * and devices, one pipeline per stage or one spanning all stages, must produce the whole pipeline's logits bit for bit
 * over a prefill chunk and 20+ mixed decode steps, on stories260K and on a random model with a separate classifier and
 * grouped-query attention. Refused input changes nothing. Every executor that splits tensor groups passes it (CPU;
 * CUDA on a GPU).
 */
public abstract class ShardGroupContract {
    /** The executor under test (CPU, CUDA, ...). */
    protected abstract Executor executor(ExecutorOptions options);

    private static final int MAX_BATCH = 4;
    private static final int GENERATED = 24;
    /** The step at which the harness first answers one reduce point a float short, then reruns the step. */
    private static final int SHORT_REPLY_STEP = 5;

    @TempDir
    static Path dir;
    private static LlamaCheckpoint stories;
    private static LlamaCheckpoint random;

    @BeforeAll
    static void load() throws IOException {
        stories = LlamaCheckpoint.load(SharedData.stories260K());
        LlamaConfig config = new LlamaConfig(64, 128, 8, 8, 4, 512, 128, false);
        random = LlamaCheckpoint.load(LlamaCheckpointWriter.writeRandom(dir.resolve("random.bin"), config, 7));
    }

    @Test
    void everyStoriesSplitMatchesTheWholePipelineBitForBit() throws Exception {
        everySplit(stories, new ExecutorOptions(1, true));
    }

    @Test
    void everyRandomModelSplitMatchesTheWholePipelineBitForBit() throws Exception {
        everySplit(random, new ExecutorOptions(1, false));
    }

    @Test
    void fp16AndQ8WeightsSplitMatchTheirWholePipelineBitForBit() throws Exception {
        ShardLayout layout = ShardLayout.of(random.config(), 2, 4);
        for (WeightPrecision weights : List.of(WeightPrecision.FP16, WeightPrecision.Q8_0)) {
            parity(random, layout, 2, true, new ExecutorOptions(1, true).withWeights(weights));
        }
    }

    private void everySplit(LlamaCheckpoint ckpt, ExecutorOptions options) throws Exception {
        int runs = 0;
        for (ShardLayout layout : TestPipelines.layouts(ckpt.config())) {
            for (int parts = 2; parts <= layout.shards(); parts *= 2) {
                for (boolean perStage : new boolean[] {true, false}) {
                    parity(ckpt, layout, parts, perStage, options);
                    runs++;
                }
            }
        }
        assertEquals(2 * (3 * 1 + 3 * 2), runs, "P in {1, 2, 4} x (M = 2 in 2 parts, M = 4 in 2 and 4), two topologies");
    }

    private void parity(LlamaCheckpoint ckpt, ShardLayout layout, int parts, boolean perStage,
                               ExecutorOptions options) throws Exception {
        String where = layout + " in " + parts + " parts" + (perStage ? ", a pipeline per stage" : ", spanning stages");
        try (Executor ex = executor(options);
             SplitGroups split = new SplitGroups(this::executor, layout, parts, perStage, options, MAX_BATCH, ckpt)) {
            Pipeline whole = TestPipelines.loaded(ex, ckpt, layout, "whole", MAX_BATCH);
            Decoding d = new Decoding(ckpt.config().vocabSize());
            d.open(whole);
            d.open(split);
            int last = layout.stages() - 1;
            TensorReducer.Point shortPoint = new TensorReducer.Point(last, layout.layers(last).to() - 1,
                    TensorReducer.Kind.FFN);
            for (int step = 0; !d.done(); step++) {
                d.next();
                if (step == SHORT_REPLY_STEP) {
                    refusedShortReply(split, d, shortPoint, where);
                }
                float[][] expected = d.logits();
                float[][] actual = d.logits();
                whole.forward(d.seqs, d.tokens, d.positions, d.count, expected);
                split.step(d.seqs, d.tokens, d.positions, d.count, actual);
                for (int b = 0; b < d.count; b++) {
                    if (expected[b] != null && !Arrays.equals(expected[b], actual[b])) {
                        fail(where + ", step " + step + ", entry " + b + ": logits differ first at column "
                                + Arrays.mismatch(expected[b], actual[b]));
                    }
                }
                d.advance(expected);
            }
            if (ckpt == stories) {
                // sequence 2 decodes greedily from token 1 at position 0, as run.c does
                assertArrayEquals(Arrays.copyOf(StoriesGreedyContract.FIRST_40, GENERATED), d.generated(1), where);
            }
        }
    }

    /** The harness answers one point a float short: every part refuses the step and its stage does not advance. */
    private static void refusedShortReply(SplitGroups split, Decoding d, TensorReducer.Point point, String where)
            throws Exception {
        int[] before = lengths(split, point.stage(), d);
        split.reducer.replyShortAt(point);
        Throwable[] failed = split.run(d.seqs, d.tokens, d.positions, d.count, d.logits());
        split.reducer.replyShortAt(null);
        for (Throwable t : failed) {
            IllegalArgumentException e = assertInstanceOf(IllegalArgumentException.class, t, where);
            assertTrue(e.getMessage().contains("returned " + (d.count * split.layout.config().dim() - 1) + " floats at "
                    + point), e.getMessage());
        }
        if (split.perStage) {
            assertArrayEquals(before, lengths(split, point.stage(), d), where + ": the refused stage did not advance");
        }
    }

    private static int[] lengths(SplitGroups split, int stage, Decoding d) {
        int[] out = new int[split.parts * d.ids.length];
        for (int g = 0; g < split.parts; g++) {
            for (int s = 0; s < d.ids.length; s++) {
                out[g * d.ids.length + s] = split.pipeline(g, stage).length(d.ids[s]);
            }
        }
        return out;
    }

    @Test
    void partsFilledBySlicesOfTheWholePipelineContinueItsSequences() throws Exception {
        ShardLayout layout = ShardLayout.balanced(stories.config(), List.of(3, 2), 4);
        ExecutorOptions options = new ExecutorOptions(1, true);
        try (Executor ex = executor(options);
             SplitGroups split = new SplitGroups(this::executor, layout, 2, true, options, MAX_BATCH, null)) {
            Pipeline whole = TestPipelines.loaded(ex, stories, layout, "whole", MAX_BATCH);
            Decoding d = new Decoding(stories.config().vocabSize());
            d.open(whole);
            for (int step = 0; step < 10; step++) {
                d.next();
                float[][] logits = d.logits();
                whole.forward(d.seqs, d.tokens, d.positions, d.count, logits);
                d.advance(logits);
            }
            d.open(split);
            for (int g = 0; g < 2; g++) {
                for (int p = 0; p < layout.stages(); p++) {
                    Pipeline part = split.pipeline(g, p);
                    long kvBytes = 0;
                    for (int m = split.shards(g).from(); m < split.shards(g).to(); m++) {
                        for (ContextSlice s : layout.weightSlices(p, m)) {
                            part.importSlice(p, m, whole.exportSlice(p, m, s));
                        }
                        for (long id : d.ids) {
                            for (ContextSlice s : layout.kvSlices(p, m, id, whole.length(id))) {
                                part.importSlice(p, m, whole.exportSlice(p, m, s));
                            }
                        }
                        assertEquals(layout.weightBytes(p, m) + layout.kvBytesPerPosition(p, m) * 2 * Decoding.CAPACITY,
                                part.device(p, m).usedBytes(), "position (" + p + ", " + m + ") holds its own share");
                    }
                    assertTrue(part.isReady());
                    for (long id : d.ids) {
                        assertEquals(whole.length(id), part.length(id));
                    }
                }
            }
            for (int step = 10; !d.done(); step++) {
                d.next();
                float[][] expected = d.logits();
                float[][] actual = d.logits();
                whole.forward(d.seqs, d.tokens, d.positions, d.count, expected);
                split.step(d.seqs, d.tokens, d.positions, d.count, actual);
                for (int b = 0; b < d.count; b++) {
                    assertArrayEquals(expected[b], actual[b], "step " + step + ", entry " + b);
                }
                d.advance(expected);
            }
        }
    }

    @Test
    void badRangesAndReducersAreRefusedAndChangeNothing() {
        ShardLayout layout = ShardLayout.balanced(stories.config(), List.of(3, 2), 4);
        try (Executor ex = executor(new ExecutorOptions(1, false))) {
            List<Device> two = List.of(ex.createDevice(new DeviceId("g", 0), 1L << 28),
                    ex.createDevice(new DeviceId("g", 1), 1L << 28));
            IndexRange stage0 = new IndexRange(0, 1);
            for (IndexRange bad : List.of(new IndexRange(3, 5), new IndexRange(2, 2))) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> ex.createShardGroup(layout, stage0, bad, two, 2));
                assertTrue(e.getMessage().contains("hosted shards " + bad), e.getMessage());
            }
            assertThrows(IllegalArgumentException.class,
                    () -> ex.createShardGroup(layout, new IndexRange(1, 3), new IndexRange(0, 2), two, 2));
            IllegalArgumentException count = assertThrows(IllegalArgumentException.class,
                    () -> ex.createShardGroup(layout, stage0, new IndexRange(0, 1), two, 2));
            assertTrue(count.getMessage().contains("1 positions but 2 devices"), count.getMessage());
            for (Device d : two) {
                assertEquals(0, d.usedBytes());
            }

            Pipeline part = ex.createShardGroup(layout, stage0, new IndexRange(2, 4), two, 2);
            assertEquals(new IndexRange(2, 4), part.hostedShards());
            assertEquals(stage0, part.hostedStages());
            part.loadWeights(stories);
            assertTrue(part.isReady());
            assertEquals(layout.weightBytes(0, 2), two.get(0).usedBytes(), "only shard 2's weights on its device");
            assertEquals(layout.weightBytes(0, 3), two.get(1).usedBytes(), "only shard 3's weights on its device");
            IllegalArgumentException notHosted = assertThrows(IllegalArgumentException.class,
                    () -> part.exportSlice(0, 1, layout.weightSlices(0, 1).get(0)));
            assertTrue(notHosted.getMessage().contains("not hosted by this tensor group"), notHosted.getMessage());
            assertThrows(IllegalArgumentException.class, () -> part.hasAllWeights(0, 0));
            part.openSequence(5, 8);
            long[] seqs = {5};
            int[] tokens = {1};
            int[] positions = {0};
            float[] hidden = new float[stories.config().dim()];
            float[][] logits = new float[1][];
            IllegalStateException whole = assertThrows(IllegalStateException.class,
                    () -> part.forward(seqs, tokens, positions, 1, logits));
            assertTrue(whole.getMessage().contains("forwardStage"), whole.getMessage());
            IllegalArgumentException noReducer = assertThrows(IllegalArgumentException.class,
                    () -> part.forwardStage(0, seqs, tokens, positions, 1, hidden, logits));
            assertTrue(noReducer.getMessage().contains("TensorReducer"), noReducer.getMessage());
            int dim = stories.config().dim();
            for (TensorReducer bad : List.<TensorReducer>of((pt, sh, partials, n) -> new float[n - 1],
                    (pt, sh, partials, n) -> null)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> part.forwardStage(0, seqs, tokens, positions, 1, hidden, logits, bad));
                assertTrue(e.getMessage().contains("stage 0 embedding for shards [2,4), expected at least count x dim = "
                        + dim), e.getMessage());
            }
            List<TensorReducer.Point> seen = new ArrayList<>();
            TensorReducer failsLate = (pt, sh, partials, n) -> {
                seen.add(pt);
                if (pt.kind() == TensorReducer.Kind.FFN && pt.layer() == 2) {
                    throw new IllegalStateException("peer lost");
                }
                return new float[n];
            };
            assertThrows(IllegalStateException.class,
                    () -> part.forwardStage(0, seqs, tokens, positions, 1, hidden, logits, failsLate));
            assertEquals("[stage 0 embedding, stage 0 layer 0 attention, stage 0 layer 0 ffn, stage 0 layer 1 attention, "
                    + "stage 0 layer 1 ffn, stage 0 layer 2 attention, stage 0 layer 2 ffn]", seen.toString());
            assertEquals(0, part.length(5), "a failed step advances nothing");
            assertArrayEquals(new float[dim], hidden, "a failed step hands nothing on");
        }
    }

    @Test
    void aGroupOfAllShardsReducesInProcessLikeCreateStages() {
        ShardLayout layout = ShardLayout.balanced(stories.config(), List.of(3, 2), 2);
        try (Executor ex = executor(new ExecutorOptions(1, false))) {
            List<Pipeline> stages = new ArrayList<>();
            for (int p = 0; p < 2; p++) {
                List<Device> devices = List.of(ex.createDevice(new DeviceId("a" + p, 0), 1L << 28),
                        ex.createDevice(new DeviceId("a" + p, 1), 1L << 28));
                Pipeline stage = ex.createShardGroup(layout, new IndexRange(p, p + 1), new IndexRange(0, 2), devices, 1);
                assertEquals(new IndexRange(0, 2), stage.hostedShards());
                stage.loadWeights(stories);
                stage.openSequence(3, 24);
                stages.add(stage);
            }
            TensorReducer never = (pt, sh, partials, n) -> {
                throw new AssertionError("a whole group reduces in-process, called at " + pt);
            };
            int token = 1;
            for (int pos = 0; pos < 24; pos++) {
                float[] hidden = new float[stories.config().dim()];
                float[][] logits = new float[1][stories.config().vocabSize()];
                for (int p = 0; p < 2; p++) {
                    stages.get(p).forwardStage(p, new long[] {3}, new int[] {token}, new int[] {pos}, 1, hidden, logits,
                            p == 0 ? never : null);
                }
                token = ReferenceLlama.argmax(logits[0]);
                assertEquals(StoriesGreedyContract.FIRST_40[pos], token, "position " + pos);
            }
        }
    }

    /**
     * A deterministic schedule of two sequences, the same for every run: sequence 1 has a 7-token prompt (a prefill
     * chunk of 4, then 3 entries beside sequence 2's first token), sequence 2 a 1-token prompt; both then decode
     * greedily side by side until each has {@link #GENERATED} tokens.
     */
    private static final class Decoding {
        static final int CAPACITY = 40;
        final long[] ids = {1, 2};
        private final int[][] pending = {{1, 34, 290, 17, 401, 5, 88}, {1}};
        private final int[] next = new int[2];
        private final List<List<Integer>> generated = List.of(new ArrayList<>(), new ArrayList<>());
        private final int vocab;
        final long[] seqs = new long[MAX_BATCH];
        final int[] tokens = new int[MAX_BATCH];
        final int[] positions = new int[MAX_BATCH];
        private final boolean[] wants = new boolean[MAX_BATCH];
        int count;

        Decoding(int vocab) {
            this.vocab = vocab;
        }

        void open(Pipeline p) {
            for (long id : ids) {
                p.openSequence(id, CAPACITY);
            }
        }

        void open(SplitGroups s) {
            for (long id : ids) {
                s.openSequence(id, CAPACITY);
            }
        }

        boolean done() {
            return generated.get(0).size() >= GENERATED && generated.get(1).size() >= GENERATED;
        }

        /** Fills the next batch: each sequence's pending tokens in order, up to MAX_BATCH entries. */
        void next() {
            count = 0;
            Arrays.fill(wants, false);
            for (int s = 0; s < 2 && count < MAX_BATCH; s++) {
                int start = next[s];
                int taken = 0;
                while (taken < pending[s].length && count < MAX_BATCH) {
                    seqs[count] = ids[s];
                    tokens[count] = pending[s][taken];
                    positions[count] = start + taken;
                    taken++;
                    count++;
                }
                if (taken > 0) {
                    wants[count - 1] = taken == pending[s].length;
                }
            }
        }

        /** Fresh logits arrays for the entries that end a sequence's pending tokens, null elsewhere. */
        float[][] logits() {
            float[][] out = new float[count][];
            for (int b = 0; b < count; b++) {
                out[b] = wants[b] ? new float[vocab] : null;
            }
            return out;
        }

        /** Consumes the batch; a sequence whose last pending token ran takes its greedy token as its next input. */
        void advance(float[][] logits) {
            for (int s = 0; s < 2; s++) {
                int taken = 0;
                int lastEntry = -1;
                for (int b = 0; b < count; b++) {
                    if (seqs[b] == ids[s]) {
                        taken++;
                        lastEntry = b;
                    }
                }
                next[s] += taken;
                pending[s] = Arrays.copyOfRange(pending[s], taken, pending[s].length);
                if (lastEntry >= 0 && wants[lastEntry]) {
                    int token = ReferenceLlama.argmax(logits[lastEntry]);
                    generated.get(s).add(token);
                    pending[s] = new int[] {token};
                }
            }
        }

        int[] generated(int s) {
            return generated.get(s).stream().mapToInt(Integer::intValue).limit(GENERATED).toArray();
        }
    }
}
