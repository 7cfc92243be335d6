package io.spotserve.bench.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.spotserve.exec.CheckpointSlices;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.Device;
import io.spotserve.exec.ExecutorOptions;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.Pipeline;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.SliceFormat;
import io.spotserve.exec.WeightPrecision;
import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.HalfFloats;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaCheckpoint.Tensor;
import io.spotserve.model.LlamaCheckpointWriter;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RandomLlamaWeightsTest {
    /** Small, with the 1B model's structure: grouped-query attention, separate classifier. */
    private static final LlamaConfig SMALL = GpuDecodeBench.SMALL;

    @TempDir
    Path dir;

    @Test
    void theOneBillionShapeHasTinyLlamasParameterCountAndItsSlicesCoverItExactly() {
        LlamaConfig c = RandomLlamaWeights.TINYLLAMA_1B;
        assertEquals(1_100_048_384L, c.parameterCount()); // TinyLlama-1.1B's published count
        long floats = 0;
        for (ContextSlice s : ShardLayout.of(c, 1, 1).weightSlices(0, 0)) {
            floats += s.floats(c);
        }
        assertEquals(c.parameterCount(), floats);
    }

    @Test
    void loadingIntoACpuPipelineHoldsEveryParameterOnceAndExportsTheGeneratedValues() {
        RandomLlamaWeights w = new RandomLlamaWeights(SMALL, 7);
        try (CpuExecutor ex = new CpuExecutor(new ExecutorOptions(1, false))) {
            Pipeline p = pipeline(ex, SMALL, 1, 1);
            w.loadInto(p);
            assertTrue(p.isReady());
            long floats = 0;
            for (ContextSlice s : p.layout().weightSlices(0, 0)) {
                float[] exported = SliceFormat.decode(SMALL, p.exportSlice(0, 0, s)).data();
                assertArrayEquals(w.floats(s), exported, s.toString());
                floats += exported.length;
            }
            assertEquals(SMALL.parameterCount(), floats);
        }
    }

    @Test
    void everySliceOfEveryLayoutIsTheSameModelAsItsCheckpointFile() throws Exception {
        RandomLlamaWeights w = new RandomLlamaWeights(SMALL, 3);
        Path file = LlamaCheckpointWriter.write(dir.resolve("small.bin"), SMALL, w.tensors());
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(file);
        for (int[] pm : new int[][] {{1, 1}, {2, 2}, {1, 2}}) {
            ShardLayout layout = ShardLayout.of(SMALL, pm[0], pm[1]);
            for (int s = 0; s < layout.stages(); s++) {
                for (int m = 0; m < layout.shards(); m++) {
                    for (ContextSlice slice : layout.weightSlices(s, m)) {
                        assertArrayEquals(CheckpointSlices.read(ckpt, slice), w.floats(slice), layout + " " + slice);
                    }
                }
            }
        }
        // element access agrees with the bulk path, e.g. wo of layer 1, row 5, column 17
        assertEquals(ckpt.layer(Tensor.WO, 1).get(5 * SMALL.dim() + 17), w.value(Tensor.WO, 1, 5L * SMALL.dim() + 17));
        assertEquals(ckpt.tensor(Tensor.CLASSIFIER).get(123), w.value(Tensor.CLASSIFIER, 0, 123));
    }

    @Test
    void sameSeedSameWeightsOtherSeedOtherWeights() {
        ContextSlice layer = new ContextSlice.LayerWeights(1, new IndexRange(0, 8), new IndexRange(0, 344));
        ContextSlice classifier = new ContextSlice.Classifier(new IndexRange(0, 512));
        RandomLlamaWeights a = new RandomLlamaWeights(SMALL, 11);
        RandomLlamaWeights b = new RandomLlamaWeights(SMALL, 11);
        RandomLlamaWeights other = new RandomLlamaWeights(SMALL, 12);
        for (ContextSlice s : List.of(layer, classifier)) {
            assertArrayEquals(a.floats(s), b.floats(s));
            float[] x = a.floats(s);
            float[] y = other.floats(s);
            int dim = SMALL.dim();
            int from = s instanceof ContextSlice.LayerWeights ? 2 * dim : 0; // skip the norms, 1 for every seed
            int same = 0;
            for (int i = from; i < x.length; i++) {
                same += x[i] == y[i] ? 1 : 0;
            }
            assertTrue(same < (x.length - from) / 100, s + ": " + same + " of " + (x.length - from) + " equal");
        }
        // distinct layers and tensors are distinct streams too
        assertFalse(a.value(Tensor.WQ, 0, 0) == a.value(Tensor.WQ, 1, 0) && a.value(Tensor.WK, 0, 0) == a.value(Tensor.WQ, 0, 0));
    }

    @Test
    void normsAreOneAndMatricesHaveStdAboutTwoHundredths() {
        RandomLlamaWeights w = new RandomLlamaWeights(SMALL, 5);
        float[] f = w.floats(new ContextSlice.LayerWeights(0, new IndexRange(0, 8), new IndexRange(0, 344)));
        int dim = SMALL.dim();
        for (int i = 0; i < 2 * dim; i++) {
            assertEquals(1f, f[i]);
        }
        assertArrayEquals(new float[] {1f, 1f}, new float[] {w.floats(new ContextSlice.FinalNorm())[0],
                w.floats(new ContextSlice.FinalNorm())[dim - 1]});
        double sum = 0;
        double sq = 0;
        double max = 0;
        int n = f.length - 2 * dim;
        for (int i = 2 * dim; i < f.length; i++) {
            sum += f[i];
            sq += (double) f[i] * f[i];
            max = Math.max(max, Math.abs(f[i]));
        }
        double mean = sum / n;
        double std = Math.sqrt(sq / n - mean * mean);
        assertEquals(0.0, mean, 3e-4, "mean");
        assertEquals(RandomLlamaWeights.STD, std, 4e-4, "std");
        assertTrue(max <= RandomLlamaWeights.STD * Math.sqrt(12) + 1e-6 && max > 2.5 * RandomLlamaWeights.STD, "max " + max);
    }

    @Test
    void fp16PipelinesHoldTheGeneratedValuesRoundedToHalves() {
        RandomLlamaWeights w = new RandomLlamaWeights(SMALL, 9);
        try (CpuExecutor ex = new CpuExecutor(new ExecutorOptions(1, false).withWeights(WeightPrecision.FP16))) {
            Pipeline p = pipeline(ex, SMALL, 1, 2);
            w.loadInto(p);
            assertEquals(WeightPrecision.FP16, p.weightPrecision());
            int changed = 0;
            for (int m = 0; m < 2; m++) {
                for (ContextSlice s : p.layout().weightSlices(0, m)) {
                    float[] generated = w.floats(s);
                    float[] rounded = generated.clone();
                    HalfFloats.round(rounded);
                    float[] exported = SliceFormat.decode(SMALL, p.exportSlice(0, m, s)).data();
                    assertArrayEquals(rounded, exported, s.toString());
                    for (int i = 0; i < generated.length; i++) {
                        changed += generated[i] != exported[i] ? 1 : 0;
                    }
                }
            }
            assertTrue(changed > 1000, "fp16 rounding changed only " + changed + " weights");
        }
    }

    @Test
    void badRequestsNameWhatWasWrong() {
        RandomLlamaWeights w = new RandomLlamaWeights(SMALL, 1);
        IllegalArgumentException kv = assertThrows(IllegalArgumentException.class,
                () -> w.floats(new ContextSlice.KvCache(1, 0, new IndexRange(0, 1), 4)));
        assertTrue(kv.getMessage().contains("cache context"), kv.getMessage());
        IllegalArgumentException layer = assertThrows(IllegalArgumentException.class, () -> w.value(Tensor.WQ, 2, 0));
        assertTrue(layer.getMessage().contains("layer 2 outside [0, 2)"), layer.getMessage());
        IllegalArgumentException index = assertThrows(IllegalArgumentException.class,
                () -> w.value(Tensor.RMS_FINAL, 0, SMALL.dim()));
        assertTrue(index.getMessage().contains("index 128 outside [0, 128)"), index.getMessage());
        try (CpuExecutor ex = new CpuExecutor(new ExecutorOptions(1, false))) {
            Pipeline other = pipeline(ex, new LlamaConfig(64, 172, 2, 4, 2, 512, 128, false), 1, 1);
            IllegalArgumentException shape = assertThrows(IllegalArgumentException.class, () -> w.loadInto(other));
            assertTrue(shape.getMessage().contains("differs from this source's"), shape.getMessage());
            assertFalse(other.isReady());
        }
    }

    private static Pipeline pipeline(CpuExecutor ex, LlamaConfig c, int stages, int shards) {
        List<Device> devices = new ArrayList<>();
        for (int i = 0; i < stages * shards; i++) {
            devices.add(ex.createDevice(new DeviceId("t", i), 1L << 28));
        }
        return ex.createPipeline(ShardLayout.of(c, stages, shards), devices, 4);
    }
}
