package io.spotserve.plan;

/**
 * Which pipeline degrees P the optimizer may use (SpotServe §2.3 search space; DESIGN §3 "ranges must divide
 * evenly or be explicitly balanced").
 */
public enum LayerSplit {
    /** The artifact's rule: P must divide the profile's {@code padded_layer_num}. */
    PADDED_DIVISIBLE,
    /**
     * Any P up to the real layer count; stages get ceil(L/P) or floor(L/P) layers and latency follows the
     * busiest stage (the cost model already uses ceil(L/P)).
     */
    BALANCED
}
