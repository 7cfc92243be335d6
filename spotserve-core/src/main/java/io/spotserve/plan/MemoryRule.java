package io.spotserve.plan;

/**
 * How the optimizer decides that a (P, M, B) fits in GPU memory. The paper gives no memory formula
 * (spotserve-paper.md §2.2, "UNCONFIRMED"); the authors' artifact uses a per-model minimum GPU count.
 */
public enum MemoryRule {
    /**
     * The artifact's rule: P &gt;= ceil(min_world_size / M) with the cost model's
     * {@link CostModel#minWorldSize()} (4 / 12 / 16 for OPT-6.7B / GPT-20B / LLaMA-30B). It encodes headroom
     * for migration buffers and the engine's workspace that a steady-state byte count misses.
     */
    ARTIFACT_MIN_GPUS,
    /**
     * A real byte count: the worst stage's weights (its layers plus the tied embedding) and the KV cache of
     * B requests of S_in + S_out tokens, split over M shards, must fit in {@link Hardware#gpuMemoryBytes()};
     * the query and key/value heads must divide by M. The rule for our own llama2.c models, whose bytes are
     * exact ({@link ModelShape#of(String, io.spotserve.model.LlamaConfig)}).
     */
    DEVICE_MEMORY
}
