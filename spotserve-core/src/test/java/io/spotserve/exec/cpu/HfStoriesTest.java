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
import io.spotserve.exec.WeightPrecision;
import io.spotserve.model.HfModel;
import io.spotserve.model.HfWriter;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.ModelWeights;
import io.spotserve.model.TensorType;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * stories260K written by {@link HfWriter} as Hugging Face folders (single F32 file, three F16 shards with an index,
 * BF16) and read by {@link HfModel}: the same floats (after rounding) and the same greedy tokens as the llama2.c file.
 * The stored q/k rows are in Hugging Face's rotate-half order: applying HF's rotary formula to them gives what
 * run.c's interleaved rotary gives on the checkpoint's rows.
 */
class HfStoriesTest {
    private static LlamaCheckpoint ckpt;

    @TempDir
    static Path dir;

    @BeforeAll
    static void load() throws IOException {
        ckpt = LlamaCheckpoint.load(SharedData.stories260K());
    }

    static float[] slices(ModelWeights w) {
        List<Float> all = new ArrayList<>();
        for (ContextSlice s : ShardLayout.of(w.config(), 1, 1).weightSlices(0, 0)) {
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
    void f32FolderHoldsTheCheckpointAndDecodesTheSameTokensUnderEveryLayout() throws IOException {
        Path folder = dir.resolve("f32");
        HfWriter.write(folder, ckpt, TensorType.F32, 1, null);
        HfModel hf = HfModel.load(folder);
        // HF configs carry their own epsilon; ours wrote llama2.c's, so the configs are equal
        assertEquals(ckpt.config(), hf.config());
        assertArrayEquals(slices(ckpt), slices(hf.weights()));
        try (Executor ex = new CpuExecutor(new ExecutorOptions(2, true))) {
            int[] want = TestPipelines.greedy(TestPipelines.loaded(ex, ckpt, ShardLayout.of(ckpt.config(), 1, 1), "r",
                    1), 1, 1, 64);
            for (ShardLayout layout : TestPipelines.layouts(hf.config())) {
                Pipeline p = TestPipelines.loaded(ex, hf.weights(), layout, "h" + layout, 2);
                assertArrayEquals(want, TestPipelines.greedy(p, 3, 1, 64), layout.toString());
                p.close();
            }
        }
    }

    @Test
    void shardedF16FolderEqualsTheFp16RoundedCheckpoint() throws IOException {
        Path folder = dir.resolve("f16");
        HfWriter.write(folder, ckpt, TensorType.F16, 3, null);
        assertTrue(Files.exists(folder.resolve("model.safetensors.index.json")));
        assertTrue(Files.exists(folder.resolve("model-00003-of-00003.safetensors")));
        HfModel hf = HfModel.load(folder);
        float[] rounded = slices(ckpt);
        io.spotserve.model.HalfFloats.round(rounded);
        assertArrayEquals(rounded, slices(hf.weights()));
        try (Executor fp16 = new CpuExecutor(new ExecutorOptions(1, true, WeightPrecision.FP16));
             Executor fp32 = new CpuExecutor(new ExecutorOptions(1, true))) {
            ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 4);
            assertArrayEquals(TestPipelines.greedy(TestPipelines.loaded(fp16, ckpt, layout, "a", 1), 1, 1, 64),
                    TestPipelines.greedy(TestPipelines.loaded(fp32, hf.weights(), layout, "b", 1), 1, 1, 64));
        }
    }

    @Test
    void bf16FolderIsTheCheckpointRoundedToBfloat16() throws IOException {
        Path folder = dir.resolve("bf16");
        HfWriter.write(folder, ckpt, TensorType.BF16, 1, null);
        float[] exact = slices(ckpt);
        float[] got = slices(HfModel.load(folder).weights());
        for (int i = 0; i < exact.length; i++) {
            // bfloat16 keeps 8 significant bits: round-to-nearest error at most 2^-8 relative
            assertEquals(exact[i], got[i], Math.abs(exact[i]) / 256 + 1e-30, "element " + i);
            assertEquals(0, Float.floatToRawIntBits(got[i]) & 0xffff, "element " + i + " has bf16 precision");
        }
    }

    @Test
    void storedQueryRowsUnderHfRotateHalfEqualRunCInterleavedRotary() throws IOException {
        Path folder = dir.resolve("rot");
        HfWriter.write(folder, ckpt, TensorType.F32, 1, null);
        LlamaConfig c = ckpt.config();
        int dim = c.dim();
        int hs = c.headSize();
        // the raw stored q_proj of layer 1, straight from the safetensors bytes
        byte[] file = Files.readAllBytes(folder.resolve("model.safetensors"));
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        long headerLen = b.getLong();
        String header = new String(file, 8, (int) headerLen);
        var t = com.google.gson.JsonParser.parseString(header).getAsJsonObject()
                .getAsJsonObject("model.layers.1.self_attn.q_proj.weight");
        long begin = t.getAsJsonArray("data_offsets").get(0).getAsLong();
        float[] stored = new float[dim * dim];
        b.position((int) (8 + headerLen + begin));
        b.asFloatBuffer().get(stored);
        float[] canonical = new float[dim * dim];
        ckpt.read(LlamaCheckpoint.Tensor.WQ, 1, 0, canonical, 0, dim * dim);
        float[] x = new float[dim];
        java.util.Random r = new java.util.Random(5);
        for (int i = 0; i < dim; i++) {
            x[i] = (float) r.nextGaussian();
        }
        float[] qHf = matvec(stored, x, dim);
        float[] qRunC = matvec(canonical, x, dim);
        int pos = 7;
        float[] freq = c.ropeFrequencies();
        for (int h = 0; h < c.heads(); h++) {
            for (int i = 0; i < hs / 2; i++) {
                double a = pos * (double) freq[i];
                // run.c: pair (2i, 2i+1) of the head rotates together
                double r0 = qRunC[h * hs + 2 * i] * Math.cos(a) - qRunC[h * hs + 2 * i + 1] * Math.sin(a);
                double r1 = qRunC[h * hs + 2 * i] * Math.sin(a) + qRunC[h * hs + 2 * i + 1] * Math.cos(a);
                // HF: q * cos + rotate_half(q) * sin, element i with element i + hs/2
                double x0 = qHf[h * hs + i];
                double x1 = qHf[h * hs + i + hs / 2];
                double h0 = x0 * Math.cos(a) - x1 * Math.sin(a);
                double h1 = x1 * Math.cos(a) + x0 * Math.sin(a);
                assertEquals(r0, h0, 1e-5, "head " + h + " pair " + i);
                assertEquals(r1, h1, 1e-5, "head " + h + " pair " + i);
            }
        }
    }

    private static float[] matvec(float[] w, float[] x, int n) {
        float[] out = new float[w.length / n];
        for (int r = 0; r < out.length; r++) {
            double s = 0;
            for (int j = 0; j < n; j++) {
                s += w[r * n + j] * x[j];
            }
            out[r] = (float) s;
        }
        return out;
    }
}
