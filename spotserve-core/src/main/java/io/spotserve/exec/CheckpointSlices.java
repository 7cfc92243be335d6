package io.spotserve.exec;

import io.spotserve.model.LlamaCheckpoint.Tensor;
import io.spotserve.model.LlamaConfig;
import io.spotserve.model.ModelWeights;

/**
 * Reads a weight {@link ContextSlice} out of a model's weights (any format), in the slice's documented float layout. This is how
 * every executor loads weights: the cold start is "import every slice from the checkpoint", the same code path
 * as importing a slice migrated from another device.
 */
public final class CheckpointSlices {
    private CheckpointSlices() {
    }

    /**
     * The floats of weight slice {@code slice} (not {@link ContextSlice.KvCache}, which no checkpoint holds).
     *
     * @throws IllegalArgumentException if the slice does not fit the checkpoint's model or is a KV slice
     */
    public static float[] read(ModelWeights checkpoint, ContextSlice slice) {
        LlamaConfig c = checkpoint.config();
        slice.validate(c);
        int dim = c.dim();
        float[] out = new float[Math.toIntExact(slice.floats(c))];
        if (slice instanceof ContextSlice.Embedding e) {
            copyRows(checkpoint, Tensor.TOKEN_EMBEDDING, 0, (long) e.vocab().from() * dim, out, 0, e.vocab().length() * dim);
        } else if (slice instanceof ContextSlice.Classifier k) {
            copyRows(checkpoint, Tensor.CLASSIFIER, 0, (long) k.vocab().from() * dim, out, 0, k.vocab().length() * dim);
        } else if (slice instanceof ContextSlice.FinalNorm) {
            copyRows(checkpoint, Tensor.RMS_FINAL, 0, 0, out, 0, dim);
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            int l = w.layer();
            int hs = c.headSize();
            IndexRange q = w.heads().scale(hs);
            IndexRange kv = w.kvHeads(c).scale(hs);
            IndexRange f = w.hidden();
            int o = 0;
            copyRows(checkpoint, Tensor.RMS_ATT, l, 0, out, o, dim);
            o += dim;
            copyRows(checkpoint, Tensor.RMS_FFN, l, 0, out, o, dim);
            o += dim;
            copyRows(checkpoint, Tensor.WQ, l, q.from() * dim, out, o, q.length() * dim);
            o += q.length() * dim;
            copyRows(checkpoint, Tensor.WK, l, kv.from() * dim, out, o, kv.length() * dim);
            o += kv.length() * dim;
            copyRows(checkpoint, Tensor.WV, l, kv.from() * dim, out, o, kv.length() * dim);
            o += kv.length() * dim;
            o = copyColumns(checkpoint, Tensor.WO, l, dim, dim, q, out, o);
            copyRows(checkpoint, Tensor.W1, l, f.from() * dim, out, o, f.length() * dim);
            o += f.length() * dim;
            copyRows(checkpoint, Tensor.W3, l, f.from() * dim, out, o, f.length() * dim);
            o += f.length() * dim;
            copyColumns(checkpoint, Tensor.W2, l, dim, c.hiddenDim(), f, out, o);
        } else {
            throw new IllegalArgumentException(slice + " is cache context; a checkpoint holds only weights");
        }
        return out;
    }

    private static void copyRows(ModelWeights src, Tensor t, int layer, long from, float[] dst, int dstOff, int len) {
        src.read(t, layer, from, dst, dstOff, len);
    }

    private static int copyColumns(ModelWeights src, Tensor t, int layer, int rows, int cols, IndexRange columns,
                                   float[] dst, int o) {
        for (int r = 0; r < rows; r++) {
            src.read(t, layer, (long) r * cols + columns.from(), dst, o, columns.length());
            o += columns.length();
        }
        return o;
    }
}
