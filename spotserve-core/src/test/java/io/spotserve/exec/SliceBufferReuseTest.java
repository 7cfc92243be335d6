package io.spotserve.exec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.spotserve.exec.cpu.CpuExecutor;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaConfig;
import io.spotserve.plan.DeviceId;
import io.spotserve.testing.SharedData;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Export and import reuse one buffer between calls ({@link SliceFormat#decodeInto}, the pipelines' scratch): what
 * a reused buffer held before never leaks into the next slice, whatever the order of calls.
 */
class SliceBufferReuseTest {
    private static final LlamaConfig C = new LlamaConfig(64, 96, 2, 8, 4, 512, 128, true);

    @Test
    void decodeIntoOverwritesEveryFloatAndRefusesAnotherLength() {
        Random r = new Random(5);
        ContextSlice layer = new ContextSlice.LayerWeights(1, IndexRange.of(0, 8), IndexRange.of(0, 96));
        int n = Math.toIntExact(layer.floats(C));
        float[] data = new float[n];
        for (int i = 0; i < n; i++) {
            data[i] = (float) r.nextGaussian();
        }
        for (byte[] bytes : List.of(SliceFormat.encode(C, layer, data), SliceFormat.encodeQ8(C, layer, data))) {
            float[] into = new float[n];
            Arrays.fill(into, Float.NaN);
            assertEquals(layer, SliceFormat.decodeInto(C, bytes, into));
            assertArrayEquals(data, into);
            assertArrayEquals(SliceFormat.decode(C, bytes).data(), into);
            float[] wrong = new float[n + 1];
            assertThrows(IllegalArgumentException.class, () -> SliceFormat.decodeInto(C, bytes, wrong));
            assertEquals(0f, wrong[0]); // nothing written
        }
    }

    @Test
    void slicesMovedOneAfterAnotherMatchThoseOfFreshPipelines() throws Exception {
        LlamaCheckpoint ckpt = LlamaCheckpoint.load(SharedData.stories260K());
        ShardLayout layout = ShardLayout.of(ckpt.config(), 1, 1);
        List<ContextSlice> slices = layout.weightSlices(0, 0);
        try (CpuExecutor cpu = new CpuExecutor(new ExecutorOptions(1, false))) {
            Pipeline from = cpu.createPipeline(layout, List.of(cpu.createDevice(new DeviceId("a", 0), 64L << 20)), 1);
            Pipeline to = cpu.createPipeline(layout, List.of(cpu.createDevice(new DeviceId("b", 0), 64L << 20)), 1);
            from.loadWeights(ckpt);
            // every slice exported by one pipeline in turn (its buffer reused), forwards then backwards
            List<byte[]> forwards = new ArrayList<>();
            for (ContextSlice s : slices) {
                forwards.add(from.exportSlice(0, 0, s));
            }
            for (int i = slices.size() - 1; i >= 0; i--) {
                assertArrayEquals(forwards.get(i), from.exportSlice(0, 0, slices.get(i)), slices.get(i).toString());
            }
            // each the same as the checkpoint's own encoding of it
            for (int i = 0; i < slices.size(); i++) {
                assertArrayEquals(SliceFormat.encodeWeights(ckpt, slices.get(i)), forwards.get(i));
            }
            // exported into an array the caller passes back: that array when its length fits, every byte rewritten
            byte[] reused = new byte[forwards.get(1).length];
            Arrays.fill(reused, (byte) 0x5a);
            for (int i = 1; i < slices.size(); i++) {
                byte[] b = from.exportSlice(0, 0, slices.get(i), reused);
                assertArrayEquals(forwards.get(i), b);
                if (b.length == reused.length) {
                    assertSame(reused, b);
                } else {
                    assertNotSame(reused, b);
                }
            }
            // imported one after another (the importer's buffer reused) and exported again: the same bytes
            for (int i = slices.size() - 1; i >= 0; i--) {
                to.importSlice(0, 0, forwards.get(i));
            }
            for (int i = 0; i < slices.size(); i++) {
                assertArrayEquals(forwards.get(i), to.exportSlice(0, 0, slices.get(i)));
            }
        }
    }
}
