package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.model.HalfFloats;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaCheckpointWriter;
import io.spotserve.model.LlamaConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link WeightPrecision#FP16} for any executor: every (P, M) layout computes what the run.c reference computes
 * on the checkpoint's weights rounded to fp16 (same greedy tokens, logits within float rounding), exported
 * weight slices carry exactly the rounded values while KV caches keep fp32, and the weight memory a device
 * accounts is the backend's stored element size per weight.
 */
public abstract class Fp16WeightsContract {
    /** The executor under test (CPU, CUDA, ...). */
    protected abstract Executor executor(ExecutorOptions options);

    /** Bytes the backend stores per fp16 weight: 2 where it keeps halves, 4 where it keeps rounded floats. */
    protected abstract int storedBytesPerFp16Weight();

    @TempDir
    Path dir;

    private static final ExecutorOptions FP16 = new ExecutorOptions(2, true, WeightPrecision.FP16);

    private LlamaCheckpoint checkpoint(int kvHeads) throws IOException {
        LlamaConfig config = new LlamaConfig(64, 128, 8, 8, kvHeads, 512, 64, kvHeads == 8);
        return LlamaCheckpoint.load(LlamaCheckpointWriter.writeRandom(dir.resolve("h" + kvHeads + ".bin"), config,
                91 + kvHeads));
    }

    @Test
    void everyLayoutMatchesTheReferenceOnRoundedWeights() throws IOException {
        LlamaCheckpoint ckpt = checkpoint(4);
        ReferenceLlama ref = new ReferenceLlama(ckpt, true);
        ReferenceLlama exact = new ReferenceLlama(ckpt, false);
        int steps = 32;
        float[][] refLogits = new float[steps][];
        int[] refTokens = new int[steps];
        int token = 5;
        float roundingEffect = 0;
        for (int pos = 0; pos < steps; pos++) {
            refLogits[pos] = ref.forward(token, pos).clone();
            float[] e = exact.forward(token, pos); // the fp32 reference fed the same tokens
            for (int v = 0; v < e.length; v++) {
                roundingEffect = Math.max(roundingEffect, Math.abs(e[v] - refLogits[pos][v]));
            }
            token = ReferenceLlama.argmax(refLogits[pos]);
            refTokens[pos] = token;
        }
        assertTrue(roundingEffect > 1e-4f, "fp16 rounding should move the logits measurably, moved " + roundingEffect);
        try (Executor ex = executor(FP16)) {
            for (ShardLayout layout : TestPipelines.layouts(ckpt.config())) {
                Pipeline p = TestPipelines.loaded(ex, ckpt, layout, layout.toString(), 2);
                assertEquals(WeightPrecision.FP16, p.weightPrecision());
                p.openSequence(1, steps);
                token = 5;
                for (int pos = 0; pos < steps; pos++) {
                    float[] logits = p.decode(new long[] {1}, new int[] {token}, new int[] {pos})[0];
                    float maxDiff = 0;
                    for (int v = 0; v < logits.length; v++) {
                        maxDiff = Math.max(maxDiff, Math.abs(logits[v] - refLogits[pos][v]));
                    }
                    assertTrue(maxDiff < 1e-4f, layout + " " + ex.name() + " pos " + pos + ": logits differ from the "
                            + "fp16-weight reference by " + maxDiff);
                    token = ReferenceLlama.argmax(logits);
                    assertEquals(refTokens[pos], token, layout + " pos " + pos);
                }
                p.close();
            }
        }
    }

    @Test
    void exportedWeightsAreTheRoundedValuesAndKvCachesStayFp32() throws IOException {
        LlamaCheckpoint ckpt = checkpoint(8);
        LlamaConfig c = ckpt.config();
        try (Executor ex = executor(FP16)) {
            ShardLayout layout = ShardLayout.of(c, 2, 2);
            Pipeline p = TestPipelines.loaded(ex, ckpt, layout, "exp", 1);
            for (int stage = 0; stage < 2; stage++) {
                for (int shard = 0; shard < 2; shard++) {
                    for (ContextSlice slice : layout.weightSlices(stage, shard)) {
                        float[] want = CheckpointSlices.read(ckpt, slice);
                        float[] raw = want.clone();
                        HalfFloats.round(want);
                        float[] got = SliceFormat.decode(c, p.exportSlice(stage, shard, slice)).data();
                        assertArrayEquals(want, got, slice + " at (" + stage + ", " + shard + ")");
                        if (slice instanceof ContextSlice.LayerWeights) {
                            assertTrue(!Arrays.equals(raw, got), slice + ": random weights should not all be halves");
                        }
                    }
                }
            }
            // a KV cache slice with values no half can hold comes back bit for bit
            p.openSequence(9, 8);
            ContextSlice.KvCache kv = new ContextSlice.KvCache(9, 0, layout.kvHeads(1), 3);
            float[] values = new float[Math.toIntExact(kv.floats(c))];
            SplittableRandom r = new SplittableRandom(3);
            for (int i = 0; i < values.length; i++) {
                values[i] = (float) r.nextDouble(-1, 1) + 1e-7f;
            }
            assertNotEquals(HalfFloats.round(values[0]), values[0]);
            p.importSlice(0, 1, SliceFormat.encode(c, kv, values));
            assertArrayEquals(values, SliceFormat.decode(c, p.exportSlice(0, 1, kv)).data());
            // an imported weight slice is rounded too
            ContextSlice w = layout.weightSlices(1, 0).get(0);
            float[] fresh = new float[Math.toIntExact(w.floats(c))];
            for (int i = 0; i < fresh.length; i++) {
                fresh[i] = (float) r.nextDouble(-0.1, 0.1);
            }
            p.releaseSlice(1, 0, w);
            p.importSlice(1, 0, SliceFormat.encode(c, w, fresh));
            float[] rounded = fresh.clone();
            HalfFloats.round(rounded);
            assertArrayEquals(rounded, SliceFormat.decode(c, p.exportSlice(1, 0, w)).data());
            p.close();
        }
    }

    @Test
    void devicesAccountTheStoredWeightBytes() throws IOException {
        LlamaCheckpoint ckpt = checkpoint(4);
        ShardLayout layout = ShardLayout.of(ckpt.config(), 2, 2);
        long[] used = new long[WeightPrecision.values().length];
        for (WeightPrecision w : WeightPrecision.values()) {
            try (Executor ex = executor(FP16.withWeights(w))) {
                Pipeline p = TestPipelines.loaded(ex, ckpt, layout, "mem", 1);
                long sum = 0;
                for (int stage = 0; stage < 2; stage++) {
                    for (int shard = 0; shard < 2; shard++) {
                        sum += p.device(stage, shard).usedBytes();
                    }
                }
                used[w.ordinal()] = sum;
                p.close();
            }
        }
        assertTrue(used[0] > 0);
        assertEquals(used[WeightPrecision.FP32.ordinal()] / Float.BYTES * storedBytesPerFp16Weight(),
                used[WeightPrecision.FP16.ordinal()], "fp16 weight bytes vs fp32 " + Arrays.toString(used));
    }
}
