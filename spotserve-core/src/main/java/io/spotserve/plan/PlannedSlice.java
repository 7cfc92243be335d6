package io.spotserve.plan;

import java.io.Serializable;
import java.util.Objects;

/**
 * One precisely named piece of model or cache context (SpotServe §3.3: "model context" = parameters,
 * "cache context" = KV cache): what a migration transfer moves or a device frees, in the planner's byte
 * model (a fraction of a block's shardable dimension). The executor's own, head-exact description of the
 * same data is {@link io.spotserve.exec.ContextSlice}.
 *
 * @param kind         what the bytes are
 * @param layer        transformer block for {@link Kind#WEIGHTS} and {@link Kind#KV_CACHE}; -1 otherwise
 * @param shard        the slice of the shardable dimension (heads / FFN columns / KV heads)
 * @param requestGroup for {@link Kind#KV_CACHE}: the old pipeline whose in-flight requests this cache
 *                     belongs to; -1 otherwise
 * @param bytes        size of the slice
 */
public record PlannedSlice(Kind kind, int layer, ShardRange shard, int requestGroup, long bytes) implements Serializable {

    /** Kinds of context. Embedding and classifier are replicated on every shard of the first / last stage. */
    public enum Kind { WEIGHTS, KV_CACHE, EMBEDDING, CLASSIFIER }

    public PlannedSlice {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(shard, "shard");
        boolean layered = kind == Kind.WEIGHTS || kind == Kind.KV_CACHE;
        if (layered ? layer < 0 : layer != -1) {
            throw new IllegalArgumentException("layer " + layer + " is invalid for " + kind
                    + "; expected " + (layered ? ">= 0" : "-1"));
        }
        if ((kind == Kind.KV_CACHE) != (requestGroup >= 0) || requestGroup < -1) {
            throw new IllegalArgumentException("requestGroup " + requestGroup + " is invalid for " + kind
                    + "; expected a pipeline index >= 0 for KV_CACHE and -1 otherwise");
        }
        if (bytes < 0) {
            throw new IllegalArgumentException("bytes must be >= 0, was " + bytes);
        }
    }

    /** The migration unit this slice belongs to (all KV cache is one unit). */
    public ContextUnit unit() {
        return switch (kind) {
            case KV_CACHE -> ContextUnit.KV;
            case EMBEDDING -> ContextUnit.EMBEDDING;
            case CLASSIFIER -> ContextUnit.CLASSIFIER;
            case WEIGHTS -> ContextUnit.layer(layer);
        };
    }

    @Override
    public String toString() {
        return kind + (layer >= 0 ? " L" + layer : "") + " " + shard + (requestGroup >= 0 ? " g" + requestGroup : "")
                + " " + bytes + "B";
    }
}
