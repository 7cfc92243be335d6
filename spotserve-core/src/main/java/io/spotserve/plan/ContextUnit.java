package io.spotserve.plan;

import java.io.Serializable;

/**
 * A unit of migration order in Algorithm 2 of SpotServe §4: the whole KV cache (always first), the
 * embedding, one transformer block's weights, or the classifier. Natural order is the paper's sequential
 * order: KV, embedding, layers 0..L-1, classifier.
 *
 * @param kind  {@link PlannedSlice.Kind} of the unit
 * @param layer block index for {@code WEIGHTS}, -1 otherwise
 */
public record ContextUnit(PlannedSlice.Kind kind, int layer) implements Comparable<ContextUnit>, Serializable {
    /** All KV cache of all layers: migrated first. */
    public static final ContextUnit KV = new ContextUnit(PlannedSlice.Kind.KV_CACHE, -1);
    /** The token embedding (first stage). */
    public static final ContextUnit EMBEDDING = new ContextUnit(PlannedSlice.Kind.EMBEDDING, -1);
    /** Final norm and classifier (last stage). */
    public static final ContextUnit CLASSIFIER = new ContextUnit(PlannedSlice.Kind.CLASSIFIER, -1);

    public ContextUnit {
        if ((kind == PlannedSlice.Kind.WEIGHTS) != (layer >= 0) || layer < -1) {
            throw new IllegalArgumentException("unit " + kind + " with layer " + layer
                    + " is invalid; expected layer >= 0 exactly for WEIGHTS, -1 otherwise");
        }
    }

    /** The weights of transformer block {@code layer}. */
    public static ContextUnit layer(int layer) {
        return new ContextUnit(PlannedSlice.Kind.WEIGHTS, layer);
    }

    /** Position in the sequential order (KV = -2, embedding = -1, layer l = l, classifier = MAX). */
    int rank() {
        return switch (kind) {
            case KV_CACHE -> -2;
            case EMBEDDING -> -1;
            case WEIGHTS -> layer;
            case CLASSIFIER -> Integer.MAX_VALUE;
        };
    }

    @Override
    public int compareTo(ContextUnit o) {
        return Integer.compare(rank(), o.rank());
    }

    @Override
    public String toString() {
        return kind == PlannedSlice.Kind.WEIGHTS ? "L" + layer : kind.toString();
    }
}
