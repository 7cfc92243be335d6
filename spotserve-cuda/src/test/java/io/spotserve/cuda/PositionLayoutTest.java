package io.spotserve.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.spotserve.testing.SharedData;
import io.spotserve.exec.CheckpointSlices;
import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.ShardLayout;
import io.spotserve.exec.TestPipelines;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaCheckpoint.Tensor;
import io.spotserve.model.LlamaCheckpointWriter;
import io.spotserve.model.LlamaConfig;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The slice↔storage copy plans that drive cuMemcpy2D, applied to host arrays standing in for device buffers:
 * every weight slice lands where the kernels read it (checked element by element against the checkpoint
 * tensors), exports return the imported floats, partial slices compose, and KV slices use the
 * [layer][K|V][capacity][kvDim] layout.
 */
class PositionLayoutTest {
    @TempDir
    Path dir;

    @Test
    void storiesWeightsLandWhereTheKernelsReadThem() throws IOException {
        checkEveryLayout(LlamaCheckpoint.load(SharedData.stories260K()));
    }

    @Test
    void groupedQueryRandomModelWeightsLandWhereTheKernelsReadThem() throws IOException {
        LlamaConfig config = new LlamaConfig(32, 48, 4, 8, 4, 40, 16, false);
        checkEveryLayout(LlamaCheckpoint.load(LlamaCheckpointWriter.writeRandom(dir.resolve("gqa.bin"), config, 3)));
    }

    private static void checkEveryLayout(LlamaCheckpoint ckpt) {
        LlamaConfig c = ckpt.config();
        for (ShardLayout layout : TestPipelines.layouts(c)) {
            for (int p = 0; p < layout.stages(); p++) {
                for (int m = 0; m < layout.shards(); m++) {
                    checkPosition(ckpt, layout, p, m);
                }
            }
        }
    }

    private static void checkPosition(LlamaCheckpoint ckpt, ShardLayout layout, int p, int m) {
        LlamaConfig c = ckpt.config();
        PositionLayout pl = new PositionLayout(layout, p, m);
        String where = layout + " stage " + p + " shard " + m;
        int dim = c.dim();
        int hs = c.headSize();
        for (ContextSlice s : layout.weightSlices(p, m)) {
            float[] canon = CheckpointSlices.read(ckpt, s);
            float[] store = new float[Math.toIntExact(storeFloats(pl, s))];
            java.util.Arrays.fill(store, Float.NaN);
            for (PositionLayout.Copy cp : pl.copies(s, 0)) {
                cp.apply(store, canon, true);
            }
            float[] back = new float[canon.length];
            for (PositionLayout.Copy cp : pl.copies(s, 0)) {
                cp.apply(store, back, false);
            }
            assertArrayEquals(canon, back, 0f, where + " " + s + " export after import");
            if (s instanceof ContextSlice.LayerWeights w) {
                int l = w.layer();
                for (int i = 0; i < store.length; i++) {
                    if (Float.isNaN(store[i])) {
                        org.junit.jupiter.api.Assertions.fail(where + " " + s + ": float " + i + " never written");
                    }
                }
                for (int j = 0; j < dim; j++) {
                    assertEquals(get(ckpt.layer(Tensor.RMS_ATT, l), j), store[j]);
                    assertEquals(get(ckpt.layer(Tensor.RMS_FFN, l), j), store[dim + j]);
                }
                // wqkv: local q row r is global row heads.from*hs + r; k / v rows follow the kv heads
                for (int r = 0; r < pl.qkvRows; r++) {
                    Tensor t = r < pl.qDim ? Tensor.WQ : r < pl.qDim + pl.kvDim ? Tensor.WK : Tensor.WV;
                    int row = r;
                    int g = r < pl.qDim ? pl.heads.from() * hs + r
                            : pl.kvHeads.from() * hs + (r - pl.qDim) % pl.kvDim;
                    for (int k = 0; k < dim; k += 7) {
                        assertEquals(get(ckpt.layer(t, l), g * dim + k), store[(int) pl.offQkv + r * dim + k],
                                () -> where + " layer " + l + " " + t + " row " + row);
                    }
                }
                // wo [dim][qDim]: the shard's columns; w13 rows; w2 [dim][f]: the shard's columns
                for (int r = 0; r < dim; r++) {
                    for (int q = 0; q < pl.qDim; q++) {
                        assertEquals(get(ckpt.layer(Tensor.WO, l), r * dim + pl.heads.from() * hs + q),
                                store[(int) pl.offWo + r * pl.qDim + q], () -> where + " wo");
                    }
                    for (int f = 0; f < pl.f; f++) {
                        assertEquals(get(ckpt.layer(Tensor.W2, l), r * c.hiddenDim() + pl.hidden.from() + f),
                                store[(int) pl.offW2 + r * pl.f + f], () -> where + " w2");
                    }
                }
                for (int f = 0; f < pl.f; f++) {
                    for (int k = 0; k < dim; k += 5) {
                        int g = (pl.hidden.from() + f) * dim + k;
                        assertEquals(get(ckpt.layer(Tensor.W1, l), g), store[(int) pl.offW13 + f * dim + k], () -> where + " w1");
                        assertEquals(get(ckpt.layer(Tensor.W3, l), g), store[(int) pl.offW13 + (pl.f + f) * dim + k],
                                () -> where + " w3");
                    }
                }
                checkHalves(pl, w, canon, store, ckpt, where);
            }
        }
    }

    /** Importing the two halves of a layer slice (heads and hidden units split) fills the same storage. */
    private static void checkHalves(PositionLayout pl, ContextSlice.LayerWeights w, float[] canon, float[] whole,
                                    LlamaCheckpoint ckpt, String where) {
        int g = ckpt.config().kvGroupSize();
        int groups = w.heads().length() / g;
        if (groups < 2 || w.hidden().length() < 2) {
            return;
        }
        int hMid = w.heads().from() + (groups / 2) * g;
        int fMid = w.hidden().from() + w.hidden().length() / 2;
        float[] store = new float[whole.length];
        for (ContextSlice.LayerWeights half : new ContextSlice.LayerWeights[] {
                new ContextSlice.LayerWeights(w.layer(), new IndexRange(w.heads().from(), hMid), new IndexRange(w.hidden().from(), fMid)),
                new ContextSlice.LayerWeights(w.layer(), new IndexRange(hMid, w.heads().to()), new IndexRange(fMid, w.hidden().to()))}) {
            float[] part = CheckpointSlices.read(ckpt, half);
            for (PositionLayout.Copy cp : pl.copies(half, 0)) {
                cp.apply(store, part, true);
            }
        }
        assertArrayEquals(whole, store, 0f, where + " " + w + " from two halves");
    }

    private static long storeFloats(PositionLayout pl, ContextSlice s) {
        if (s instanceof ContextSlice.LayerWeights) {
            return pl.layerFloats;
        } else if (s instanceof ContextSlice.FinalNorm) {
            return pl.dim;
        }
        return (long) pl.vocab.length() * pl.dim;
    }

    private static float get(FloatBuffer b, int i) {
        return b.get(i);
    }

    @Test
    void kvSlicesUseTheLayerKvCapacityLayout() {
        LlamaConfig c = new LlamaConfig(32, 48, 4, 8, 4, 40, 16, false);
        ShardLayout layout = ShardLayout.balanced(c, java.util.List.of(1, 3), 2);
        PositionLayout pl = new PositionLayout(layout, 1, 1); // layers [1,4), kv heads [2,4)
        int cap = 12;
        int len = 9;
        float[] store = new float[Math.toIntExact(pl.kvFloats(cap))];
        Random r = new Random(1);
        ContextSlice.KvCache one = new ContextSlice.KvCache(5, 2, IndexRange.of(3, 4), len); // second local kv head
        float[] canon = new float[Math.toIntExact(one.floats(c))];
        for (int i = 0; i < canon.length; i++) {
            canon[i] = r.nextFloat();
        }
        for (PositionLayout.Copy cp : pl.copies(one, cap)) {
            cp.apply(store, canon, true);
        }
        int hs = c.headSize();
        for (int which = 0; which < 2; which++) {
            for (int t = 0; t < len; t++) {
                for (int d = 0; d < hs; d++) {
                    assertEquals(canon[which * len * hs + t * hs + d], store[(int) pl.kvOffset(1, which, cap, t) + hs + d]);
                }
            }
        }
        int written = 0;
        for (float v : store) {
            written += v != 0f ? 1 : 0;
        }
        assertEquals(canon.length, written, "nothing outside the slice is touched");
    }
}
