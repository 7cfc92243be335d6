package io.spotserve.cuda;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.ShardLayout;
import io.spotserve.model.LlamaConfig;
import java.util.ArrayList;
import java.util.List;

/**
 * Where the weights and KV cache of one pipeline position (stage, shard) live in device memory, and which
 * strided copies move a {@link ContextSlice} between that storage and the slice's canonical float layout
 * (the {@link io.spotserve.exec.SliceFormat} payload). Pure arithmetic, no CUDA: it is unit-tested on host
 * arrays and then drives {@code cuMemcpy2D} in {@link CudaShard}.
 *
 * <p>The storage layout is the CPU executor's (StageShard), so the same slice maps to the same floats:
 * per local layer one block rms_att [dim] | rms_ffn [dim] | wqkv [(hq+2·hkv)·hs][dim] | wo [dim][hq·hs] |
 * w13 [2f][dim] | w2 [dim][f]; embedding / classifier rows [vLocal][dim]; final norm [dim]; per sequence
 * KV [layer][K|V][capacity][hkv·hs].
 */
final class PositionLayout {
    /** Which device buffer of the position a copy touches. */
    enum Target { LAYER, EMBEDDING, CLASSIFIER, FINAL_NORM, KV }

    /**
     * One 2-D copy: {@code height} rows of {@code width} floats; row r is at {@code storeOffset + r·storePitch}
     * in the target buffer and at {@code canonOffset + r·canonPitch} in the slice's floats. All in floats.
     *
     * @param localLayer the local layer index for LAYER and KV targets, 0 otherwise
     */
    record Copy(Target target, int localLayer, long storeOffset, long storePitch, int canonOffset, int canonPitch,
                int width, int height) {
        /** Applies the copy on host arrays (tests, and the reference for the device path). */
        void apply(float[] store, float[] canon, boolean importing) {
            for (int r = 0; r < height; r++) {
                int s = Math.toIntExact(storeOffset + r * storePitch);
                int c = canonOffset + r * canonPitch;
                if (importing) {
                    System.arraycopy(canon, c, store, s, width);
                } else {
                    System.arraycopy(store, s, canon, c, width);
                }
            }
        }
    }

    final LlamaConfig c;
    final IndexRange layers;
    final IndexRange heads;
    final IndexRange kvHeads;
    final IndexRange hidden;
    final IndexRange vocab;
    final boolean first;
    final boolean last;
    final int dim;
    final int hs;
    final int hq;
    final int qDim;
    final int kvDim;
    final int f;
    final int qkvRows;
    final long offQkv;
    final long offWo;
    final long offW13;
    final long offW2;
    final long layerFloats;

    PositionLayout(ShardLayout layout, int stage, int shard) {
        c = layout.config();
        layers = layout.layers(stage);
        heads = layout.heads(shard);
        kvHeads = layout.kvHeads(shard);
        hidden = layout.hidden(shard);
        vocab = layout.vocab(shard);
        first = stage == 0;
        last = stage == layout.stages() - 1;
        dim = c.dim();
        hs = c.headSize();
        hq = heads.length();
        qDim = hq * hs;
        kvDim = kvHeads.length() * hs;
        f = hidden.length();
        qkvRows = qDim + 2 * kvDim;
        offQkv = 2L * dim;
        offWo = offQkv + (long) qkvRows * dim;
        offW13 = offWo + (long) dim * qDim;
        offW2 = offW13 + 2L * f * dim;
        layerFloats = offW2 + (long) dim * f;
    }

    /** Floats of one sequence's KV cache of {@code capacity} positions on this position. */
    long kvFloats(int capacity) {
        return 2L * layers.length() * capacity * kvDim;
    }

    /** Float offset of K (which = 0) or V (which = 1) of local layer {@code l}, position {@code pos}, in a KV buffer. */
    long kvOffset(int l, int which, int capacity, int pos) {
        return ((long) (l * 2 + which) * capacity + pos) * kvDim;
    }

    /**
     * The copies that move {@code slice} (which this position owns) between storage and canonical floats, in
     * canonical order; a KV slice needs the sequence's {@code capacity}.
     */
    List<Copy> copies(ContextSlice slice, int capacity) {
        List<Copy> out = new ArrayList<>();
        if (slice instanceof ContextSlice.Embedding e) {
            out.add(new Copy(Target.EMBEDDING, 0, (long) (e.vocab().from() - vocab.from()) * dim, 0, 0, 0,
                    e.vocab().length() * dim, 1));
        } else if (slice instanceof ContextSlice.Classifier k) {
            out.add(new Copy(Target.CLASSIFIER, 0, (long) (k.vocab().from() - vocab.from()) * dim, 0, 0, 0,
                    k.vocab().length() * dim, 1));
        } else if (slice instanceof ContextSlice.FinalNorm) {
            out.add(new Copy(Target.FINAL_NORM, 0, 0, 0, 0, 0, dim, 1));
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            int l = w.layer() - layers.from();
            int sh0 = w.heads().from() - heads.from();
            int nh = w.heads().length();
            int skv0 = w.kvHeads(c).from() - kvHeads.from();
            int nkv = w.kvHeads(c).length();
            int sf0 = w.hidden().from() - hidden.from();
            int nf = w.hidden().length();
            int o = 0;
            out.add(row(l, 0, o, 2 * dim));                                               // rms_att, rms_ffn
            o += 2 * dim;
            out.add(row(l, offQkv + (long) sh0 * hs * dim, o, nh * hs * dim));            // wq rows
            o += nh * hs * dim;
            out.add(row(l, offQkv + (long) (qDim + skv0 * hs) * dim, o, nkv * hs * dim)); // wk rows
            o += nkv * hs * dim;
            out.add(row(l, offQkv + (long) (qDim + kvDim + skv0 * hs) * dim, o, nkv * hs * dim)); // wv rows
            o += nkv * hs * dim;
            out.add(new Copy(Target.LAYER, l, offWo + (long) sh0 * hs, qDim, o, nh * hs, nh * hs, dim)); // wo columns
            o += dim * nh * hs;
            out.add(row(l, offW13 + (long) sf0 * dim, o, nf * dim));                      // w1 rows
            o += nf * dim;
            out.add(row(l, offW13 + (long) (f + sf0) * dim, o, nf * dim));                // w3 rows
            o += nf * dim;
            out.add(new Copy(Target.LAYER, l, offW2 + sf0, f, o, nf, nf, dim));          // w2 columns
        } else {
            ContextSlice.KvCache k = (ContextSlice.KvCache) slice;
            int l = k.layer() - layers.from();
            int off = (k.kvHeads().from() - kvHeads.from()) * hs;
            int width = k.kvHeads().length() * hs;
            for (int which = 0; which < 2; which++) {
                out.add(new Copy(Target.KV, l, kvOffset(l, which, capacity, 0) + off, kvDim, which * k.length() * width,
                        width, width, k.length()));
            }
        }
        out.removeIf(cp -> cp.width() == 0 || cp.height() == 0);
        return out;
    }

    private static Copy row(int l, long storeOffset, int canonOffset, int width) {
        return new Copy(Target.LAYER, l, storeOffset, 0, canonOffset, 0, width, 1);
    }
}
