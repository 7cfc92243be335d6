package io.spotserve.exec.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.testing.SharedData;
import io.spotserve.exec.CheckpointSlices;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Executor;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.TestPipelines;
import io.spotserve.model.HalfFloats;
import io.spotserve.model.GgufModel;
import io.spotserve.model.GgufWriter;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.ModelWeights;
import io.spotserve.model.TensorType;
import io.spotserve.model.Tokenizer;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * stories260K converted by our {@link GgufWriter} to GGUF F32, F16 and Q8_0 and read back by {@link GgufModel}:
 * F32 holds the llama2.c floats exactly and decodes the same greedy tokens under every (P, M); F16 holds the
 * fp16-rounded matrices and the exact f32 norms (llama.cpp's convention) and decodes exactly like them; Q8_0 stays within a stated logit tolerance and gives
 * the same greedy text for the tested prompts. The tokenizer stored in the file encodes like tok512.bin.
 */
class GgufStoriesTest {
    private static final int STEPS = 64;
    /** Largest |logit(Q8_0) − logit(F32)| allowed over 3 prompts × 40 positions (Q8_0 fed the F32 greedy tokens) × 512 logits. */
    private static final double LOGIT_TOLERANCE = 1.0;
    private static LlamaCheckpoint ckpt;
    private static Tokenizer tok;

    @TempDir
    static Path dir;

    @BeforeAll
    static void load() throws IOException {
        ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        tok = Tokenizer.load(SharedData.tok512(), ckpt.config().vocabSize());
    }

    private static GgufModel convert(TensorType type) throws IOException {
        Path file = dir.resolve("stories260K-" + type + ".gguf");
        GgufWriter.write(file, ckpt, tok, type);
        return GgufModel.load(file);
    }

    private static float[] slices(ModelWeights w) {
        ShardLayout layout = ShardLayout.of(w.config(), 1, 1);
        java.util.List<Float> all = new java.util.ArrayList<>();
        for (ContextSlice s : layout.weightSlices(0, 0)) {
            for (float f : CheckpointSlices.read(w, s)) {
                all.add(f);
            }
        }
        float[] out = new float[all.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = all.get(i);
        }
        return out;
    }

    @Test
    void f32FileHoldsTheCheckpointsFloatsAndDecodesTheSameGreedyTokensUnderEveryLayout() throws IOException {
        GgufModel g = convert(TensorType.F32);
        assertEquals(ckpt.config(), g.config());
        assertArrayEquals(slices(ckpt), slices(g.weights()));
        try (Executor ex = new CpuExecutor(new ExecutorOptions(2, true))) {
            int[] want = TestPipelines.greedy(TestPipelines.loaded(ex, ckpt, ShardLayout.of(ckpt.config(), 1, 1), "r",
                    1), 1, 1, STEPS);
            for (ShardLayout layout : TestPipelines.layouts(g.config())) {
                Pipeline p = TestPipelines.loaded(ex, g.weights(), layout, "g" + layout, 2);
                assertArrayEquals(want, TestPipelines.greedy(p, 3, 1, STEPS), layout.toString());
                p.close();
            }
        }
    }

    /** The checkpoint with its matrices rounded to fp16 and its norm vectors exact: what an F16 GGUF file holds. */
    private static ModelWeights fp16Matrices(ModelWeights exact) {
        return new ModelWeights() {
            @Override
            public io.spotserve.model.LlamaConfig config() {
                return exact.config();
            }

            @Override
            public String description() {
                return "fp16 matrices of " + exact.description();
            }

            @Override
            public void read(LlamaCheckpoint.Tensor t, int layer, long offset, float[] dst, int dstOff, int len) {
                exact.read(t, layer, offset, dst, dstOff, len);
                if (t != LlamaCheckpoint.Tensor.RMS_ATT && t != LlamaCheckpoint.Tensor.RMS_FFN
                        && t != LlamaCheckpoint.Tensor.RMS_FINAL) {
                    for (int i = dstOff; i < dstOff + len; i++) {
                        dst[i] = HalfFloats.round(dst[i]);
                    }
                }
            }
        };
    }

    @Test
    void f16FileHoldsFp16MatricesAndF32NormsAndDecodesLikeThem() throws IOException {
        GgufModel g = convert(TensorType.F16);
        ModelWeights want = fp16Matrices(ckpt);
        assertArrayEquals(slices(want), slices(g.weights()));
        assertEquals(TensorType.F16, g.tensorType(LlamaCheckpoint.Tensor.WQ, 0));
        assertEquals(TensorType.F32, g.tensorType(LlamaCheckpoint.Tensor.RMS_ATT, 0)); // as llama.cpp requires
        try (Executor ex = new CpuExecutor(new ExecutorOptions(1, true))) {
            ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 2);
            int[] expected = TestPipelines.greedy(TestPipelines.loaded(ex, want, layout, "h", 1), 1, 1, STEPS);
            assertArrayEquals(expected, TestPipelines.greedy(TestPipelines.loaded(ex, g.weights(), layout, "g", 1), 1,
                    1, STEPS));
            // and the same greedy text as the exact checkpoint for these 64 steps
            assertArrayEquals(TestPipelines.greedy(TestPipelines.loaded(ex, ckpt, layout, "c", 1), 1, 1, STEPS),
                    expected);
        }
    }

    @Test
    void q8FileStaysWithinTheLogitToleranceAndGivesTheSameGreedyText() throws IOException {
        GgufModel g = convert(TensorType.Q8_0);
        // stories260K's hidden_dim 172 is not a multiple of 32: w2 falls back to F16, the others are Q8_0
        assertEquals(TensorType.Q8_0, g.tensorType(LlamaCheckpoint.Tensor.WQ, 0));
        assertEquals(TensorType.F16, g.tensorType(LlamaCheckpoint.Tensor.W2, 0));
        float[] exact = slices(ckpt);
        float[] q = slices(g.weights());
        double maxErr = 0;
        for (int i = 0; i < exact.length; i++) {
            maxErr = Math.max(maxErr, Math.abs(exact[i] - q[i]));
        }
        assertTrue(maxErr > 0 && maxErr < 0.02, "max weight error " + maxErr);
        try (Executor ex = new CpuExecutor(new ExecutorOptions(1, true))) {
            ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 1);
            Pipeline ref = TestPipelines.loaded(ex, ckpt, layout, "r", 1);
            Pipeline q8 = TestPipelines.loaded(ex, g.weights(), layout, "q", 1);
            double maxLogitErr = 0;
            // (stories260K is tiny and near-ties are common: "The cat sat" diverges at its 13th generated token)
            for (String prompt : new String[] {"Once upon a time", "Lily and Ben", "One day"}) {
                int[] tokens = tok.encode(prompt, true, false);
                ref.openSequence(1, STEPS);
                q8.openSequence(1, STEPS);
                int a = tokens[0];
                int b = tokens[0];
                StringBuilder ta = new StringBuilder();
                StringBuilder tb = new StringBuilder();
                for (int pos = 0; pos < 40; pos++) {
                    float[] la = ref.decode(new long[] {1}, new int[] {a}, new int[] {pos})[0];
                    float[] lb = q8.decode(new long[] {1}, new int[] {b}, new int[] {pos})[0];
                    for (int v = 0; v < la.length; v++) {
                        maxLogitErr = Math.max(maxLogitErr, Math.abs(la[v] - lb[v]));
                    }
                    a = pos + 1 < tokens.length ? tokens[pos + 1] : argmax(la);
                    b = a;
                    ta.append(a).append(' ');
                    tb.append(pos + 1 < tokens.length ? tokens[pos + 1] : argmax(lb)).append(' ');
                }
                assertEquals(ta.toString(), tb.toString(), prompt);
                ref.closeSequence(1);
                q8.closeSequence(1);
            }
            // logits of this model span about ±15; Q8_0 moves them by at most LOGIT_TOLERANCE
            assertTrue(maxLogitErr < LOGIT_TOLERANCE, "max logit error " + maxLogitErr);
        }
    }

    @Test
    void bf16AndQ4FilesDecodeWithinTheirPrecision() throws IOException {
        float[] exact = slices(ckpt);
        float[] bf16 = slices(convert(TensorType.BF16).weights());
        float[] q4 = slices(convert(TensorType.Q4_0).weights());
        double q4Err = 0;
        for (int i = 0; i < exact.length; i++) {
            assertEquals(exact[i], bf16[i], Math.abs(exact[i]) / 256 + 1e-30, "bf16 element " + i);
            q4Err = Math.max(q4Err, Math.abs(exact[i] - q4[i]));
        }
        // Q4_0 keeps 16 levels per block of 32: errors up to about amax / 8
        assertTrue(q4Err > 0.001 && q4Err < 0.25, "max Q4_0 weight error " + q4Err);
    }

    @Test
    void tokenizerStoredInTheFileEncodesAndDecodesLikeTok512() throws IOException {
        Tokenizer fromFile = convert(TensorType.F32).tokenizer();
        for (String s : new String[] {"Once upon a time", "Lily and Ben\nwent  home.", "héllo wörld 123 ✓", ""}) {
            assertArrayEquals(tok.encode(s, true, false), fromFile.encode(s, true, false), s);
        }
        for (int id = 0; id < tok.vocabSize(); id++) {
            assertArrayEquals(tok.piece(id), fromFile.piece(id));
        }
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
