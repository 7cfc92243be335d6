package io.spotserve.engine;

import java.time.Duration;

/**
 * One change of the engine's parallel configuration (SpotServe §3: every membership change re-plans).
 *
 * @param at                 engine-clock time the change started
 * @param reason             what triggered it (instance acquired, preemption notice, termination, ...)
 * @param from               pipelines before, as "D×(P,M,B)"
 * @param to                 pipelines after
 * @param interruptedRequests requests that lost their pipeline and were re-queued
 * @param bytesLoaded        weight bytes read from the checkpoint for new pipelines
 * @param bytesMigrated      weight and KV bytes moved between devices (context migration)
 * @param pause              engine-clock time the change took
 */
public record Reconfiguration(Duration at, String reason, String from, String to, int interruptedRequests,
                              long bytesLoaded, long bytesMigrated, Duration pause) {
}
