package io.spotserve.exec;

import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaCheckpoint.Tensor;
import io.spotserve.model.LlamaConfig;
import java.nio.FloatBuffer;

/**
 * Reads a weight {@link ContextSlice} out of a checkpoint, in the slice's documented float layout. This is how
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
    public static float[] read(LlamaCheckpoint checkpoint, ContextSlice slice) {
        LlamaConfig c = checkpoint.config();
        slice.validate(c);
        int dim = c.dim();
        float[] out = new float[Math.toIntExact(slice.floats(c))];
        if (slice instanceof ContextSlice.Embedding e) {
            copyRows(checkpoint.tensor(Tensor.TOKEN_EMBEDDING), e.vocab().from() * dim, out, 0, e.vocab().length() * dim);
        } else if (slice instanceof ContextSlice.Classifier k) {
            copyRows(checkpoint.tensor(Tensor.CLASSIFIER), k.vocab().from() * dim, out, 0, k.vocab().length() * dim);
        } else if (slice instanceof ContextSlice.FinalNorm) {
            copyRows(checkpoint.tensor(Tensor.RMS_FINAL), 0, out, 0, dim);
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            int l = w.layer();
            int hs = c.headSize();
            IndexRange q = w.heads().scale(hs);
            IndexRange kv = w.kvHeads(c).scale(hs);
            IndexRange f = w.hidden();
            int o = 0;
            copyRows(checkpoint.layer(Tensor.RMS_ATT, l), 0, out, o, dim);
            o += dim;
            copyRows(checkpoint.layer(Tensor.RMS_FFN, l), 0, out, o, dim);
            o += dim;
            copyRows(checkpoint.layer(Tensor.WQ, l), q.from() * dim, out, o, q.length() * dim);
            o += q.length() * dim;
            copyRows(checkpoint.layer(Tensor.WK, l), kv.from() * dim, out, o, kv.length() * dim);
            o += kv.length() * dim;
            copyRows(checkpoint.layer(Tensor.WV, l), kv.from() * dim, out, o, kv.length() * dim);
            o += kv.length() * dim;
            o = copyColumns(checkpoint.layer(Tensor.WO, l), dim, dim, q, out, o);
            copyRows(checkpoint.layer(Tensor.W1, l), f.from() * dim, out, o, f.length() * dim);
            o += f.length() * dim;
            copyRows(checkpoint.layer(Tensor.W3, l), f.from() * dim, out, o, f.length() * dim);
            o += f.length() * dim;
            copyColumns(checkpoint.layer(Tensor.W2, l), dim, c.hiddenDim(), f, out, o);
        } else {
            throw new IllegalArgumentException(slice + " is cache context; a checkpoint holds only weights");
        }
        return out;
    }

    private static void copyRows(FloatBuffer src, int from, float[] dst, int dstOff, int len) {
        src.position(from);
        src.get(dst, dstOff, len);
    }

    private static int copyColumns(FloatBuffer src, int rows, int cols, IndexRange columns, float[] dst, int o) {
        for (int r = 0; r < rows; r++) {
            src.position(r * cols + columns.from());
            src.get(dst, o, columns.length());
            o += columns.length();
        }
        return o;
    }
}
