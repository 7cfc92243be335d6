package io.spotserve.plan;

import java.io.Serializable;
import java.util.Objects;

/**
 * A batch of requests in flight on an old pipeline at reconfiguration time. Its KV cache covers
 * {@code promptTokens + decodedSteps} tokens of each request; {@code decodedSteps} is its decoding
 * progress, which decides who keeps their cache when capacity shrinks (SpotServe §3.3).
 *
 * @param id           caller's identifier
 * @param requests     requests in the batch
 * @param promptTokens prompt length S_in
 * @param decodedSteps committed decoding iterations
 */
public record InflightBatch(String id, int requests, int promptTokens, int decodedSteps) implements Serializable {
    public InflightBatch {
        Objects.requireNonNull(id, "id");
        if (requests < 1 || promptTokens < 0 || decodedSteps < 0) {
            throw new IllegalArgumentException("batch " + id + ": requests must be >= 1 and tokens >= 0, were requests="
                    + requests + ", promptTokens=" + promptTokens + ", decodedSteps=" + decodedSteps);
        }
    }

    /** Tokens held in the KV cache of each request. */
    public long tokens() {
        return (long) promptTokens + decodedSteps;
    }

    /** KV bytes of this batch in one block at M = 1. */
    long kvBytesPerLayer(ModelContext model) {
        return Math.multiplyExact(Math.multiplyExact((long) requests, tokens()), model.kvBytesPerTokenPerLayer());
    }
}
