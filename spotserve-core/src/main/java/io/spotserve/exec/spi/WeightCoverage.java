package io.spotserve.exec.spi;

import io.spotserve.exec.ContextSlice;
import io.spotserve.exec.IndexRange;
import io.spotserve.exec.ShardLayout;
import java.util.Arrays;

/**
 * Which parts of its weights one pipeline position (stage, shard) has been given, for executor implementors:
 * per local layer the norms, each query head's and each hidden unit's share of the matrices, the embedding
 * and classifier rows and the final norm. Weight slices arrive piecewise during context migration
 * (SpotServe §3.3: a position may receive a layer's heads from several sources), so ownership, "holds" and
 * completeness are answered from these flags, independent of how a backend stores the floats.
 */
public final class WeightCoverage {
    private final int stage;
    private final int shard;
    private final IndexRange layers;
    private final IndexRange heads;
    private final IndexRange kvHeads;
    private final IndexRange hidden;
    private final IndexRange vocab;
    private final boolean first;
    private final boolean last;
    private final boolean aliasClassifier;
    private final boolean[] rmsDone;
    private final boolean[][] headDone;
    private final boolean[][] hiddenDone;
    private final boolean[] embDone;
    private final boolean[] clsDone;
    private boolean finalNormDone;
    private boolean complete;
    private boolean completeKnown;

    /** Nothing given yet to position (stage, shard) of {@code layout}. */
    public WeightCoverage(ShardLayout layout, int stage, int shard) {
        this.stage = stage;
        this.shard = shard;
        layers = layout.layers(stage);
        heads = layout.heads(shard);
        kvHeads = layout.kvHeads(shard);
        hidden = layout.hidden(shard);
        vocab = layout.vocab(shard);
        first = stage == 0;
        last = stage == layout.stages() - 1;
        aliasClassifier = first && last && layout.config().sharedClassifier();
        int nl = layers.length();
        rmsDone = new boolean[nl];
        headDone = new boolean[nl][heads.length()];
        hiddenDone = new boolean[nl][hidden.length()];
        embDone = first ? new boolean[vocab.length()] : null;
        clsDone = last ? new boolean[vocab.length()] : null;
    }

    /** Pipeline stage p of the position. */
    public int stage() {
        return stage;
    }

    /** Tensor shard m of the position. */
    public int shard() {
        return shard;
    }

    /** Whether one array serves as embedding and classifier (first and last stage, shared classifier). */
    public boolean aliasClassifier() {
        return aliasClassifier;
    }

    /** Global layers of the position's stage. */
    public IndexRange layers() {
        return layers;
    }

    /** Query heads of the position's shard. */
    public IndexRange heads() {
        return heads;
    }

    /** KV heads of the position's shard. */
    public IndexRange kvHeads() {
        return kvHeads;
    }

    /** FFN hidden units of the position's shard. */
    public IndexRange hidden() {
        return hidden;
    }

    /** Vocabulary rows of the position's shard. */
    public IndexRange vocab() {
        return vocab;
    }

    /** Whether the position is on the first stage (holds embedding rows). */
    public boolean first() {
        return first;
    }

    /** Whether the position is on the last stage (holds final norm and classifier rows). */
    public boolean last() {
        return last;
    }

    /**
     * Whether the position owns all of {@code slice}; a KV slice needs its sequence open here with
     * {@code kvCapacity} positions (pass a negative capacity when the sequence is not open here).
     */
    public boolean owns(ContextSlice slice, int kvCapacity) {
        if (slice instanceof ContextSlice.Embedding e) {
            return first && within(vocab, e.vocab());
        } else if (slice instanceof ContextSlice.Classifier k) {
            return last && within(vocab, k.vocab());
        } else if (slice instanceof ContextSlice.FinalNorm) {
            return last;
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            return layers.contains(w.layer()) && within(heads, w.heads()) && within(hidden, w.hidden());
        } else {
            ContextSlice.KvCache k = (ContextSlice.KvCache) slice;
            return layers.contains(k.layer()) && within(kvHeads, k.kvHeads()) && kvCapacity >= 0
                    && k.length() <= kvCapacity;
        }
    }

    /**
     * Whether {@code inner} lies within {@code outer}, bounds included even when empty ({@link IndexRange#contains}
     * accepts an empty range anywhere, but an empty piece outside a shard must not index its bookkeeping).
     */
    private static boolean within(IndexRange outer, IndexRange inner) {
        return inner.from() >= outer.from() && inner.to() <= outer.to();
    }

    /** Whether the position holds all of {@code slice}; KV slices up to {@code filledLength} positions. */
    public boolean holds(ContextSlice slice, int kvCapacity, int filledLength) {
        if (!owns(slice, kvCapacity)) {
            return false;
        }
        if (slice instanceof ContextSlice.Embedding e) {
            return allTrue(embDone, e.vocab().from() - vocab.from(), e.vocab().to() - vocab.from());
        } else if (slice instanceof ContextSlice.Classifier k) {
            return allTrue(clsDone, k.vocab().from() - vocab.from(), k.vocab().to() - vocab.from());
        } else if (slice instanceof ContextSlice.FinalNorm) {
            return finalNormDone;
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            int l = w.layer() - layers.from();
            return rmsDone[l] && allTrue(headDone[l], w.heads().from() - heads.from(), w.heads().to() - heads.from())
                    && allTrue(hiddenDone[l], w.hidden().from() - hidden.from(), w.hidden().to() - hidden.from());
        } else {
            return ((ContextSlice.KvCache) slice).length() <= filledLength;
        }
    }

    /** Whether local layer {@code l} (0 = the position's first layer) has all its heads, hidden units and norms. */
    public boolean layerComplete(int l) {
        return rmsDone[l] && allTrue(headDone[l], 0, headDone[l].length)
                && allTrue(hiddenDone[l], 0, hiddenDone[l].length);
    }

    /** Whether every weight the position needs is present (cached until the next mark or unmark). */
    public boolean complete() {
        if (!completeKnown) {
            complete = computeComplete();
            completeKnown = true;
        }
        return complete;
    }

    private boolean computeComplete() {
        for (int l = 0; l < rmsDone.length; l++) {
            if (!rmsDone[l] || !allTrue(headDone[l], 0, headDone[l].length)
                    || !allTrue(hiddenDone[l], 0, hiddenDone[l].length)) {
                return false;
            }
        }
        return (!first || allTrue(embDone, 0, embDone.length))
                && (!last || (finalNormDone && allTrue(clsDone, 0, clsDone.length)));
    }

    /** Records that an owned weight slice was imported (KV slices are not tracked here). */
    public void mark(ContextSlice slice) {
        if (slice instanceof ContextSlice.Embedding e) {
            Arrays.fill(embDone, e.vocab().from() - vocab.from(), e.vocab().to() - vocab.from(), true);
        } else if (slice instanceof ContextSlice.Classifier k) {
            Arrays.fill(clsDone, k.vocab().from() - vocab.from(), k.vocab().to() - vocab.from(), true);
        } else if (slice instanceof ContextSlice.FinalNorm) {
            finalNormDone = true;
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            int l = w.layer() - layers.from();
            rmsDone[l] = true;
            Arrays.fill(headDone[l], w.heads().from() - heads.from(), w.heads().to() - heads.from(), true);
            Arrays.fill(hiddenDone[l], w.hidden().from() - hidden.from(), w.hidden().to() - hidden.from(), true);
        }
        completeKnown = false;
    }

    /** Records that a whole weight unit (a layer block, the embedding, the classifier, the final norm) was freed. */
    public void unmark(ContextSlice slice) {
        if (slice instanceof ContextSlice.Embedding) {
            Arrays.fill(embDone, false);
        } else if (slice instanceof ContextSlice.Classifier) {
            Arrays.fill(clsDone, false);
        } else if (slice instanceof ContextSlice.FinalNorm) {
            finalNormDone = false;
        } else if (slice instanceof ContextSlice.LayerWeights w) {
            int l = w.layer() - layers.from();
            rmsDone[l] = false;
            Arrays.fill(headDone[l], false);
            Arrays.fill(hiddenDone[l], false);
        }
        completeKnown = false;
    }

    /** Whether any embedding row is present. */
    public boolean anyEmbedding() {
        return anyTrue(embDone);
    }

    /** Whether any classifier row is present. */
    public boolean anyClassifier() {
        return anyTrue(clsDone);
    }

    /** Forgets everything (the position freed all its storage). */
    public void clear() {
        for (int l = 0; l < rmsDone.length; l++) {
            rmsDone[l] = false;
            Arrays.fill(headDone[l], false);
            Arrays.fill(hiddenDone[l], false);
        }
        if (first) {
            Arrays.fill(embDone, false);
        }
        if (last) {
            Arrays.fill(clsDone, false);
        }
        finalNormDone = false;
        completeKnown = false;
    }

    private static boolean allTrue(boolean[] a, int from, int to) {
        for (int i = from; i < to; i++) {
            if (!a[i]) {
                return false;
            }
        }
        return true;
    }

    private static boolean anyTrue(boolean[] a) {
        if (a == null) {
            return false;
        }
        for (boolean b : a) {
            if (b) {
                return true;
            }
        }
        return false;
    }
}
