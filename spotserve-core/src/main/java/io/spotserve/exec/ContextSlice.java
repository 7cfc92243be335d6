package io.spotserve.exec;

import io.spotserve.model.LlamaConfig;
import java.util.Objects;
import java.util.Optional;

/**
 * One unit of context that migration moves between devices (SpotServe §3.3–3.4): a slice of the model
 * context (weights) or of the cache context (one sequence's KV cache).
 *
 * <p>Slices are plain values, so the device mapper can weigh "what a device holds ∩ what a position needs"
 * ({@link #intersect}, {@link #bytes}) and the migration planner can order them without touching data. The
 * float layout of each kind, used by {@link SliceFormat}, is the checkpoint's layout restricted to the slice
 * (documented on each record), so a slice exported by one executor imports into any other.
 */
public sealed interface ContextSlice {

    /** Number of floats this slice carries for a model of shape {@code config}. */
    long floats(LlamaConfig config);

    /** Bytes (fp32) this slice carries. */
    default long bytes(LlamaConfig config) {
        return floats(config) * Float.BYTES;
    }

    /**
     * The part of this slice that {@code other} also covers, or empty when they share nothing (different kind,
     * layer or sequence, or disjoint ranges).
     */
    Optional<ContextSlice> intersect(ContextSlice other);

    /** Whether every index of {@code other} lies inside this slice. */
    default boolean covers(ContextSlice other) {
        return intersect(other).map(other::equals).orElse(false);
    }

    /**
     * Checks that the slice fits a model of shape {@code config}.
     *
     * @throws IllegalArgumentException naming the field, its value and the allowed range
     */
    void validate(LlamaConfig config);

    /**
     * Token-embedding rows {@code vocab} (stage 0). Floats: {@code [vocab.length][dim]}.
     */
    record Embedding(IndexRange vocab) implements ContextSlice {
        public Embedding {
            Objects.requireNonNull(vocab, "vocab");
        }

        @Override
        public long floats(LlamaConfig c) {
            return (long) vocab.length() * c.dim();
        }

        @Override
        public Optional<ContextSlice> intersect(ContextSlice other) {
            if (other instanceof Embedding e && !vocab.intersect(e.vocab).isEmpty()) {
                return Optional.of(new Embedding(vocab.intersect(e.vocab)));
            }
            return Optional.empty();
        }

        @Override
        public void validate(LlamaConfig c) {
            requireWithin("embedding vocab rows", vocab, c.vocabSize());
        }
    }

    /**
     * Classifier rows {@code vocab} (last stage; the token embedding when the model shares it). Floats:
     * {@code [vocab.length][dim]}.
     */
    record Classifier(IndexRange vocab) implements ContextSlice {
        public Classifier {
            Objects.requireNonNull(vocab, "vocab");
        }

        @Override
        public long floats(LlamaConfig c) {
            return (long) vocab.length() * c.dim();
        }

        @Override
        public Optional<ContextSlice> intersect(ContextSlice other) {
            if (other instanceof Classifier e && !vocab.intersect(e.vocab).isEmpty()) {
                return Optional.of(new Classifier(vocab.intersect(e.vocab)));
            }
            return Optional.empty();
        }

        @Override
        public void validate(LlamaConfig c) {
            requireWithin("classifier vocab rows", vocab, c.vocabSize());
        }
    }

    /** The final RMSNorm weights (last stage, replicated on every shard). Floats: {@code [dim]}. */
    record FinalNorm() implements ContextSlice {
        @Override
        public long floats(LlamaConfig c) {
            return c.dim();
        }

        @Override
        public Optional<ContextSlice> intersect(ContextSlice other) {
            return other instanceof FinalNorm ? Optional.of(this) : Optional.empty();
        }

        @Override
        public void validate(LlamaConfig c) {
        }
    }

    /**
     * The weights of transformer block {@code layer} restricted to query heads {@code heads} (with the key/value
     * heads they read, {@code heads / kvGroupSize}) and FFN hidden units {@code hidden}. Floats, in order:
     * rms_att [dim]; rms_ffn [dim]; wq rows of the heads [h·hs][dim]; wk rows [kv·hs][dim]; wv rows
     * [kv·hs][dim]; wo columns of the heads [dim][h·hs]; w1 rows [f][dim]; w3 rows [f][dim]; w2 columns
     * [dim][f]. The RMSNorm weights are replicated, so every layer slice carries them.
     */
    record LayerWeights(int layer, IndexRange heads, IndexRange hidden) implements ContextSlice {
        public LayerWeights {
            Objects.requireNonNull(heads, "heads");
            Objects.requireNonNull(hidden, "hidden");
            if (layer < 0) {
                throw new IllegalArgumentException("layer must be >= 0, was " + layer);
            }
        }

        /** The key/value heads that the query heads of this slice read. */
        public IndexRange kvHeads(LlamaConfig c) {
            int g = c.kvGroupSize();
            return new IndexRange(heads.from() / g, heads.to() / g);
        }

        @Override
        public long floats(LlamaConfig c) {
            long dim = c.dim();
            long hs = c.headSize();
            long q = heads.length() * hs;
            long kv = kvHeads(c).length() * hs;
            return 2 * dim + 2 * q * dim + 2 * kv * dim + 3L * hidden.length() * dim;
        }

        @Override
        public Optional<ContextSlice> intersect(ContextSlice other) {
            if (other instanceof LayerWeights w && w.layer == layer) {
                IndexRange h = heads.intersect(w.heads);
                IndexRange f = hidden.intersect(w.hidden);
                if (!h.isEmpty() || !f.isEmpty()) {
                    return Optional.of(new LayerWeights(layer, h, f));
                }
            }
            return Optional.empty();
        }

        @Override
        public void validate(LlamaConfig c) {
            if (layer >= c.layers()) {
                throw new IllegalArgumentException("layer " + layer + " outside [0, " + c.layers() + ")");
            }
            requireWithin("query heads", heads, c.heads());
            requireWithin("hidden units", hidden, c.hiddenDim());
            int g = c.kvGroupSize();
            if (heads.from() % g != 0 || heads.to() % g != 0) {
                throw new IllegalArgumentException("query heads " + heads + " do not align with key/value groups of "
                        + g + " heads (n_heads " + c.heads() + ", n_kv_heads " + c.kvHeads() + ")");
            }
        }
    }

    /**
     * Positions {@code [0, length)} of sequence {@code sequence}'s KV cache in block {@code layer}, restricted to
     * key/value heads {@code kvHeads}. Floats, in order: keys [length][kv·hs], then values [length][kv·hs].
     */
    record KvCache(long sequence, int layer, IndexRange kvHeads, int length) implements ContextSlice {
        public KvCache {
            Objects.requireNonNull(kvHeads, "kvHeads");
            if (layer < 0) {
                throw new IllegalArgumentException("layer must be >= 0, was " + layer);
            }
            if (length < 0) {
                throw new IllegalArgumentException("KV length must be >= 0, was " + length);
            }
        }

        @Override
        public long floats(LlamaConfig c) {
            return 2L * length * kvHeads.length() * c.headSize();
        }

        @Override
        public Optional<ContextSlice> intersect(ContextSlice other) {
            if (other instanceof KvCache k && k.sequence == sequence && k.layer == layer) {
                IndexRange h = kvHeads.intersect(k.kvHeads);
                if (!h.isEmpty()) {
                    return Optional.of(new KvCache(sequence, layer, h, Math.min(length, k.length)));
                }
            }
            return Optional.empty();
        }

        @Override
        public void validate(LlamaConfig c) {
            if (layer >= c.layers()) {
                throw new IllegalArgumentException("layer " + layer + " outside [0, " + c.layers() + ")");
            }
            requireWithin("key/value heads", kvHeads, c.kvHeads());
            if (length > c.seqLen()) {
                throw new IllegalArgumentException("KV length " + length + " exceeds seq_len " + c.seqLen());
            }
        }
    }

    private static void requireWithin(String what, IndexRange range, int limit) {
        if (range.to() > limit) {
            throw new IllegalArgumentException(what + " " + range + " exceed the model's " + limit);
        }
    }
}
