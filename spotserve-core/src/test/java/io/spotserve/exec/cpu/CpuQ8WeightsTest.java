package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.exec.CheckpointSlices;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ReferenceLlama;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.SliceFormat;
import io.spotserve.exec.SliceMigrationContract;
import io.spotserve.exec.TestPipelines;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.model.GgufFile;
import io.spotserve.model.GgufModel;
import io.spotserve.model.GgufWriter;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaCheckpointWriter;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.TensorType;
import io.spotserve.model.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Q8_0 weights served as int8 by the CPU executor: a Q8_0 GGUF file (stories260K and a random model, written by our
 * {@link GgufWriter}) loaded with {@link WeightPrecision#Q8_0} keeps its matrices as the file's blocks (device bytes
 * equal to the file's Q8_0 tensor sizes), exports exactly the file's values, decodes the same greedy text as the
 * same file dequantized to fp32 under every (P, M), and survives migration between layouts whose splits cut blocks.
 *
 * <p>Reference: the fp32 pipeline on the same file's dequantized values. The Q8_0 pipeline differs from it only by
 * the per-block quantization of activations (llama.cpp's Q8_0 × Q8_0 scheme), so logits move by a little
 * (0.33 at most on stories260K over 3 prompts × 100 positions; bounded here by {@link #LOGIT_TOLERANCE}) and the
 * greedy token agrees wherever the fp32 top-two margin exceeds twice the step's largest logit change. Exact greedy equality over {@link #STEPS} steps is also asserted for every
 * layout: it held here for 200 steps at M ≤ 2 and for 71 at M = 4, and can fail only if a near-tie (a top-two
 * margin below the quantization noise) lands inside the first {@link #STEPS} tokens, e.g. after kernel changes.
 */
@Timeout(600)
class CpuQ8WeightsTest {
    private static final int STEPS = 64;
    /** Largest |logit(Q8_0) − logit(fp32 of the same file)| allowed on stories260K (logits span about ±15). */
    private static final double LOGIT_TOLERANCE = 0.5;

    @TempDir
    static Path dir;

    private static LlamaCheckpoint ckpt;
    private static Tokenizer tok;
    private static GgufModel stories;
    private static GgufModel random;

    @BeforeAll
    static void write() throws IOException {
        ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        tok = Tokenizer.load(SharedData.tok512(), ckpt.config().vocabSize());
        Path s = dir.resolve("stories260K-q8_0.gguf");
        GgufWriter.write(s, ckpt, tok, TensorType.Q8_0);
        stories = GgufModel.load(s);
        // every matrix on whole blocks at M = 1 (dim 64, hidden 96), but M = 2 cuts w2's blocks (48 columns each)
        LlamaConfig rc = new LlamaConfig(64, 96, 4, 8, 4, 512, 128, true);
        LlamaCheckpoint r = LlamaCheckpoint.load(LlamaCheckpointWriter.writeRandom(dir.resolve("random.bin"), rc, 7));
        Path rq = dir.resolve("random-q8_0.gguf");
        GgufWriter.write(rq, r, tok, TensorType.Q8_0);
        random = GgufModel.load(rq);
    }

    private static Executor q8(boolean vector) {
        return new CpuExecutor(new ExecutorOptions(2, vector).withWeights(WeightPrecision.Q8_0));
    }

    private static long usedBytes(Pipeline p) {
        long sum = 0;
        for (int s = 0; s < p.layout().stages(); s++) {
            for (int m = 0; m < p.layout().shards(); m++) {
                sum += p.device(s, m).usedBytes();
            }
        }
        return sum;
    }

    @Test
    void optionsKeepInt8ForQ8FilesUnlessAskedOtherwise() throws IOException {
        ExecutorOptions base = new ExecutorOptions(1, false);
        assertEquals(WeightPrecision.Q8_0, base.forModel(stories.weights()).weights());
        assertEquals(WeightPrecision.FP32, base.forModel(ckpt).weights(), "a llama2.c checkpoint is fp32");
        Path f32 = dir.resolve("stories260K-f32.gguf");
        GgufWriter.write(f32, ckpt, tok, TensorType.F32);
        assertEquals(WeightPrecision.FP32, base.forModel(GgufModel.load(f32).weights()).weights());
        assertEquals(WeightPrecision.FP16, base.withWeights(WeightPrecision.FP16).forModel(stories.weights()).weights());
        System.setProperty(ExecutorOptions.KEEP_Q8_PROPERTY, "false");
        try {
            assertEquals(WeightPrecision.FP32, base.forModel(stories.weights()).weights());
        } finally {
            System.clearProperty(ExecutorOptions.KEEP_Q8_PROPERTY);
        }
        try (Executor ex = q8(false); Executor fp32 = new CpuExecutor(base)) {
            assertEquals(1.0625, ex.storedBytesPerWeightExact());
            assertEquals(2, ex.storedBytesPerWeight());
            assertEquals(4.0, fp32.storedBytesPerWeightExact());
        }
    }

    @Test
    void storiesQ8FileDecodesLikeItsDequantizedFloatsUnderEveryLayout() {
        LlamaConfig c = stories.config();
        try (Executor ex = q8(true); Executor fp32 = new CpuExecutor(new ExecutorOptions(2, true))) {
            for (ShardLayout layout : TestPipelines.layouts(c)) {
                Pipeline q = TestPipelines.loaded(ex, stories.weights(), layout, "q" + layout, 1);
                Pipeline f = TestPipelines.loaded(fp32, stories.weights(), layout, "f" + layout, 1);
                assertEquals(WeightPrecision.Q8_0, q.weightPrecision());
                for (int p = 0; p < layout.stages(); p++) {
                    for (int m = 0; m < layout.shards(); m++) {
                        StageShard s = ((CpuPipeline) q).shard(p, m);
                        // dim 64: wq/wk/wv, w1/w3 and the vocabulary rows are whole blocks on every shard; wo only
                        // while a shard's heads fill whole blocks (M <= 2: 32 columns); hidden 172 never does
                        assertTrue(s.q8(0) && s.q8(2) && s.q8Vocab(), layout + " " + p + "," + m);
                        assertEquals(layout.shards() <= 2, s.q8(1), layout + " wo");
                        assertFalse(s.q8(3), layout + " w2");
                        for (ContextSlice w : layout.weightSlices(p, m)) {
                            // int8 in memory, but what leaves the device is the file's values exactly
                            assertArrayEquals(CheckpointSlices.read(stories.weights(), w),
                                    SliceFormat.decode(c, q.exportSlice(p, m, w)).data(), 0f, layout + " " + w);
                        }
                    }
                }
                assertTrue(usedBytes(q) < usedBytes(f) / 2, layout + ": " + usedBytes(q) + " vs " + usedBytes(f));
                assertArrayEquals(TestPipelines.greedy(f, 1, 1, STEPS), TestPipelines.greedy(q, 1, 1, STEPS),
                        layout.toString());
                q.close();
                f.close();
            }
        }
    }

    @Test
    void teacherForcedLogitsStayWithinToleranceAndClearArgmaxesAgree() {
        LlamaConfig c = stories.config();
        try (Executor ex = q8(true); Executor fp32 = new CpuExecutor(new ExecutorOptions(2, true))) {
            for (ShardLayout layout : List.of(ShardLayout.of(c, 1, 1), ShardLayout.balanced(c, List.of(3, 2), 2))) {
                Pipeline q = TestPipelines.loaded(ex, stories.weights(), layout, "q" + layout, 1);
                Pipeline f = TestPipelines.loaded(fp32, stories.weights(), layout, "f" + layout, 1);
                double maxErr = 0;
                int clear = 0;
                for (String prompt : new String[] {"Once upon a time", "Lily and Ben", "The cat sat"}) {
                    int[] tokens = tok.encode(prompt, true, false);
                    q.openSequence(1, 100);
                    f.openSequence(1, 100);
                    int t = tokens[0];
                    for (int pos = 0; pos < 100; pos++) {
                        float[] lf = f.decode(new long[] {1}, new int[] {t}, new int[] {pos})[0];
                        float[] lq = q.decode(new long[] {1}, new int[] {t}, new int[] {pos})[0];
                        double err = 0;
                        for (int v = 0; v < lf.length; v++) {
                            err = Math.max(err, Math.abs(lf[v] - lq[v]));
                        }
                        maxErr = Math.max(maxErr, err);
                        int best = ReferenceLlama.argmax(lf);
                        float second = Float.NEGATIVE_INFINITY;
                        for (int v = 0; v < lf.length; v++) {
                            if (v != best) {
                                second = Math.max(second, lf[v]);
                            }
                        }
                        if (lf[best] - second > 2 * err) { // no logit moved enough to swap these two
                            assertEquals(best, ReferenceLlama.argmax(lq), layout + " '" + prompt + "' pos " + pos);
                            clear++;
                        }
                        t = pos + 1 < tokens.length ? tokens[pos + 1] : best; // both fed the fp32 greedy path
                    }
                    q.closeSequence(1);
                    f.closeSequence(1);
                }
                assertTrue(maxErr > 0, "Q8_0 activations change the logits a little");
                assertTrue(maxErr < LOGIT_TOLERANCE, layout + ": max logit error " + maxErr);
                assertTrue(clear > 200, layout + ": only " + clear + " of 300 positions had a clear argmax"); // 258 measured
                q.close();
                f.close();
            }
        }
    }

    @Test
    void devicesHoldTheFilesQ8BlocksAtTheirRealSize() {
        // stories260K at P = 1, M = 1: each Q8_0 tensor of the file takes its 34-bytes-per-32 size, every other tensor
        // (f32 norms, the F16 w2 kept fp32) 4 bytes per element; the shared classifier is the embedding's rows
        long want = 0;
        for (GgufFile.TensorInfo t : stories.file().tensors().values()) {
            TensorType type = t.ggmlType() == TensorType.Q8_0.ggmlId ? TensorType.Q8_0 : TensorType.F32;
            want += t.elements() / type.blockSize * type.blockBytes;
        }
        try (Executor ex = q8(false)) {
            Pipeline p = TestPipelines.loaded(ex, stories.weights(), ShardLayout.of(stories.config(), 1, 1), "s", 1);
            assertEquals(want, usedBytes(p));
            p.close();
            // the random model is on whole blocks everywhere at M = 1: the planner's byte count is the device's
            for (ShardLayout layout : List.of(ShardLayout.of(random.config(), 1, 1), ShardLayout.of(random.config(), 2, 1),
                    ShardLayout.of(random.config(), 4, 1))) {
                Pipeline r = TestPipelines.loaded(ex, random.weights(), layout, "r" + layout, 1);
                for (int s = 0; s < layout.stages(); s++) {
                    assertEquals(layout.weightBytes(s, 0, ex.storedBytesPerWeightExact()), r.device(s, 0).usedBytes(),
                            layout + " stage " + s);
                }
                r.close();
            }
        }
    }

    @Test
    void migrationBetweenLayoutsThatCutBlocksReassemblesTheExactBlocks() {
        LlamaConfig c = random.config();
        ShardLayout m2 = ShardLayout.of(c, 1, 2);    // w2 columns [0, 48) and [48, 96): not whole blocks, kept fp32
        ShardLayout p2 = ShardLayout.of(c, 2, 1);    // w2 whole: Q8_0, assembled from the two pieces above
        ShardLayout p2m4 = ShardLayout.of(c, 2, 4);  // wo 16 columns per shard: fp32 again
        try (Executor ex = q8(true)) {
            Pipeline half = TestPipelines.loaded(ex, random.weights(), m2, "half", 1);
            assertFalse(((CpuPipeline) half).shard(0, 0).q8(3));
            Pipeline whole = ex.createPipeline(p2, TestPipelines.devices(ex, p2, "whole", 1 << 22), 1);
            Pipeline direct = TestPipelines.loaded(ex, random.weights(), p2, "direct", 1);
            // the first piece of layer 0 cuts w2's second block: assembled in floats until the layer is whole
            ContextSlice piece = new ContextSlice.LayerWeights(0, io.spotserve.exec.IndexRange.of(0, 2),
                    io.spotserve.exec.IndexRange.of(0, 48));
            whole.importSlice(0, 0, half.exportSlice(0, 0, piece));
            assertTrue(((CpuPipeline) whole).shard(0, 0).assembling());
            SliceMigrationContract.migrate(half, whole);
            assertTrue(whole.isReady());
            for (int s = 0; s < 2; s++) {
                StageShard shard = ((CpuPipeline) whole).shard(s, 0);
                assertTrue(shard.q8(3), "w2 is Q8_0 on the P = 2 shards");
                assertFalse(shard.assembling(), "staging dropped once every layer is complete");
                assertEquals(direct.device(s, 0).usedBytes(), whole.device(s, 0).usedBytes());
                for (ContextSlice w : p2.weightSlices(s, 0)) {
                    assertArrayEquals(direct.exportSlice(s, 0, w), whole.exportSlice(s, 0, w), w.toString());
                }
            }
            int[] want = TestPipelines.greedy(direct, 1, 1, 40);
            assertArrayEquals(want, TestPipelines.greedy(whole, 1, 1, 40));
            // Q8_0 weights travel as their blocks: about 1.07 bytes per weight on the wire, not 4
            ContextSlice layer1 = p2.weightSlices(0, 0).get(2);
            byte[] wire = whole.exportSlice(0, 0, layer1);
            long floats = layer1.floats(c);
            assertTrue(wire.length < floats * 4 * 0.28, wire.length + " bytes for " + floats + " weights");
            // and any executor reads them back as the file's floats: an fp32 pipeline fed the blocks decodes like
            // one loaded from the file
            try (Executor fp32 = new CpuExecutor(new ExecutorOptions(2, true))) {
                Pipeline f = fp32.createPipeline(p2, TestPipelines.devices(fp32, p2, "f", 1 << 22), 1);
                SliceMigrationContract.migrate(whole, f);
                Pipeline fDirect = TestPipelines.loaded(fp32, random.weights(), p2, "fd", 1);
                for (ContextSlice w : p2.weightSlices(1, 0)) {
                    assertArrayEquals(fDirect.exportSlice(1, 0, w), f.exportSlice(1, 0, w), w.toString());
                }
                assertArrayEquals(TestPipelines.greedy(fDirect, 1, 1, 40), TestPipelines.greedy(f, 1, 1, 40));
            }
            // and on to a layout that cuts wo's blocks: those pieces land in fp32 storage, decoding continues
            Pipeline quarter = ex.createPipeline(p2m4, TestPipelines.devices(ex, p2m4, "quarter", 1 << 22), 1);
            SliceMigrationContract.migrate(whole, quarter);
            assertFalse(((CpuPipeline) quarter).shard(1, 3).q8(1));
            Pipeline quarterDirect = TestPipelines.loaded(ex, random.weights(), p2m4, "quarterDirect", 1);
            for (int m = 0; m < 4; m++) {
                for (ContextSlice w : p2m4.weightSlices(1, m)) {
                    assertArrayEquals(quarterDirect.exportSlice(1, m, w), quarter.exportSlice(1, m, w), w.toString());
                }
            }
            assertArrayEquals(TestPipelines.greedy(quarterDirect, 1, 1, 40), TestPipelines.greedy(quarter, 1, 1, 40));
        }
    }

    @Test
    void aQ8FileIsStreamedAsItsBlocks() {
        // the cold-start / reload path (WeightSource, a remote worker's stream): a Q8_0 file's slices leave as blocks
        io.spotserve.exec.WeightSource source = io.spotserve.exec.WeightSource.of(random.weights());
        ShardLayout layout = ShardLayout.of(random.config(), 1, 1);
        long wire = 0;
        long floats = 0;
        for (ContextSlice s : layout.weightSlices(0, 0)) {
            byte[] bytes = source.encode(s);
            assertArrayEquals(CheckpointSlices.read(random.weights(), s), SliceFormat.decode(random.config(), bytes).data(),
                    0f, s.toString());
            wire += bytes.length;
            floats += s.floats(random.config());
        }
        assertTrue(wire < floats * 4 * 0.28, wire + " bytes for " + floats + " weights");
        // an fp32 checkpoint is still sent as floats
        byte[] plain = io.spotserve.exec.WeightSource.of(ckpt).encode(new ContextSlice.FinalNorm());
        assertEquals(SliceFormat.HEADER_BYTES + 4L * ckpt.config().dim(), plain.length);
    }

    @Test
    void batchedEntriesGetExactlyTheLogitsTheyGetAlone() {
        // activations are quantized per entry, so batching changes nothing, bit for bit
        try (Executor ex = q8(true)) {
            Pipeline p = TestPipelines.loaded(ex, stories.weights(), ShardLayout.of(stories.config(), 1, 2), "b", 3);
            int[] toks = {1, 400, 17, 93, 250, 8};
            float[][] alone = new float[toks.length][];
            p.openSequence(9, 16);
            for (int i = 0; i < toks.length; i++) {
                alone[i] = p.decode(new long[] {9}, new int[] {toks[i]}, new int[] {i})[0];
            }
            p.closeSequence(9);
            p.openSequence(1, 16);
            p.openSequence(2, 16);
            p.decode(new long[] {1}, new int[] {toks[0]}, new int[] {0});
            for (int i = 1; i < toks.length; i++) { // sequence 1 one ahead of sequence 2, in one batch
                float[][] both = p.decode(new long[] {1, 2}, new int[] {toks[i], toks[i - 1]}, new int[] {i, i - 1});
                assertArrayEquals(alone[i], both[0], 0f, "entry 1 step " + i);
                assertArrayEquals(alone[i - 1], both[1], 0f, "entry 2 step " + i);
            }
            p.close();
        }
    }

    /**
     * Batches of 1 to 5 entries: from 4 entries the Q8_0 products hand their quants over as floats and the tile kernel
     * runs four entries per pass (Q8TiledKernel.tileWide4); every entry still gets, bit for bit, what it gets alone.
     */
    @Test
    void entriesInFoursGetExactlyTheLogitsTheyGetAlone() {
        try (Executor ex = q8(true)) {
            Pipeline p = TestPipelines.loaded(ex, stories.weights(), ShardLayout.of(stories.config(), 1, 2), "f", 5);
            int[] toks = {1, 400, 17, 93, 250, 8, 77, 310};
            float[][] alone = new float[toks.length][];
            p.openSequence(99, 16);
            for (int i = 0; i < toks.length; i++) {
                alone[i] = p.decode(new long[] {99}, new int[] {toks[i]}, new int[] {i})[0];
            }
            p.closeSequence(99);
            int entries = 5;
            for (int e = 0; e < entries; e++) {
                p.openSequence(e + 1, 16);
            }
            for (int step = 0; step < toks.length + entries - 1; step++) { // entry e runs e steps behind entry 0
                java.util.List<Integer> in = new java.util.ArrayList<>();
                for (int e = 0; e < entries; e++) {
                    if (step - e >= 0 && step - e < toks.length) {
                        in.add(e);
                    }
                }
                long[] ids = new long[in.size()];
                int[] tokens = new int[in.size()];
                int[] positions = new int[in.size()];
                for (int k = 0; k < in.size(); k++) {
                    ids[k] = in.get(k) + 1;
                    positions[k] = step - in.get(k);
                    tokens[k] = toks[positions[k]];
                }
                float[][] out = p.decode(ids, tokens, positions);
                for (int k = 0; k < in.size(); k++) {
                    assertArrayEquals(alone[positions[k]], out[k], 0f,
                            "entry " + in.get(k) + " position " + positions[k] + " in a batch of " + in.size());
                }
            }
            p.close();
        }
    }

    @Test
    void scalarAndVectorQ8KernelsDecodeTheSameGreedyText() {
        ShardLayout layout = ShardLayout.of(random.config(), 1, 1);
        try (Executor vector = q8(true); Executor scalar = q8(false)) {
            assertArrayEquals(TestPipelines.greedy(TestPipelines.loaded(vector, random.weights(), layout, "v", 1), 1, 1, 60),
                    TestPipelines.greedy(TestPipelines.loaded(scalar, random.weights(), layout, "s", 1), 1, 1, 60));
        }
    }
}
