package io.spotserve.engine;

/**
 * How the engine carries context across a reconfiguration. {@link #MIGRATE} is SpotServe (§3.3–§4); the other two
 * are the paper's baselines, built into the same engine so that a comparison holds the request manager, the
 * executor and the clock constant and varies only what happens to weights and KV caches.
 */
public enum ReconfigurationMode {
    /**
     * SpotServe: the device mapper keeps what it can in place, the rest of the weights and the KV caches of the
     * requests it keeps move between devices (from storage only when no survivor holds them), caches without room
     * are parked in host memory.
     */
    MIGRATE,
    /**
     * The Rerouting baseline: pipelines the new configuration leaves as they are keep running with their requests;
     * every other pipeline is built from the weight source (storage), and the requests of changed or broken
     * pipelines recompute from their committed tokens elsewhere. Pair it with a fixed {@code parallelism}.
     */
    REROUTE,
    /**
     * The Reparallelization baseline: every change rebuilds every pipeline from the weight source and every running
     * request recomputes. Pair it with {@code planning} so that the configuration follows Algorithm 1.
     */
    RESTART
}
